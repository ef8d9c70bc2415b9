import {randomBytes} from 'node:crypto'
import {mkdirSync} from 'node:fs'
import {dirname} from 'node:path'

import {planDigest, PlanSchema, type Plan} from '../agent/plan.js'
import {ConfigError} from '../errors.js'
import {SqliteConnection} from '../inventory/sqlite-connection.js'
import {
  Approval,
  Escalation,
  type ApprovalDecision,
  type ApprovalStatus,
  type EscalationInput,
  type OutcomeRecord,
  type RunRecord,
  type StateStore,
} from './state-store.js'

const STATE_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, inventory TEXT NOT NULL, engine TEXT NOT NULL, dry_run INTEGER NOT NULL,
  started_at TEXT NOT NULL, finished_at TEXT, log_file TEXT NOT NULL, summary TEXT, exit_code INTEGER
);
CREATE TABLE IF NOT EXISTS outcomes (
  run_id TEXT NOT NULL, finding_id TEXT NOT NULL, outcome TEXT NOT NULL, root_cause TEXT NOT NULL,
  summary TEXT NOT NULL,
  plan_id TEXT, approval_id TEXT, escalation_id TEXT, PRIMARY KEY (run_id, finding_id)
);
CREATE TABLE IF NOT EXISTS plans (
  id TEXT PRIMARY KEY, run_id TEXT NOT NULL, finding_id TEXT NOT NULL, fingerprint TEXT NOT NULL, digest TEXT NOT NULL,
  created_at TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
  id TEXT PRIMARY KEY, plan_id TEXT NOT NULL, run_id TEXT NOT NULL, finding_id TEXT NOT NULL, inventory TEXT NOT NULL,
  status TEXT NOT NULL, max_impact INTEGER NOT NULL, writes INTEGER NOT NULL, summary TEXT NOT NULL,
  root_cause TEXT NOT NULL,
  requested_at TEXT NOT NULL, expires_at TEXT NOT NULL, decided_at TEXT, decided_by TEXT, reason TEXT,
  changes TEXT NOT NULL DEFAULT '[]', plan_digest TEXT NOT NULL, fingerprint TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_approvals_status ON approvals (status, requested_at);
CREATE TABLE IF NOT EXISTS escalations (
  id TEXT PRIMARY KEY, run_id TEXT NOT NULL, finding_id TEXT NOT NULL, inventory TEXT NOT NULL, status TEXT NOT NULL,
  rule TEXT NOT NULL, entity TEXT NOT NULL, evidence TEXT NOT NULL, evidence_digest TEXT NOT NULL, tried TEXT NOT NULL,
  root_cause_guess TEXT NOT NULL, summary TEXT NOT NULL, next_step TEXT NOT NULL, seen INTEGER NOT NULL,
  created_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, closed_at TEXT, closed_by TEXT, note TEXT, plan_id TEXT
);
CREATE INDEX IF NOT EXISTS idx_escalations_status ON escalations (status, created_at);
CREATE TABLE IF NOT EXISTS state_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO state_meta (key, value) VALUES ('schema_version', '1');
`

export type Row = Record<string, string | number | null>

export function newId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`
}

export function approvalOf(row: Row): Approval {
  return Approval.parse({
    id: row.id,
    planId: row.plan_id,
    runId: row.run_id,
    findingId: row.finding_id,
    inventory: row.inventory,
    status: row.status,
    maxImpact: row.max_impact,
    writes: row.writes,
    summary: row.summary,
    rootCause: row.root_cause,
    requestedAt: row.requested_at,
    expiresAt: row.expires_at,
    decidedAt: row.decided_at,
    decidedBy: row.decided_by,
    reason: row.reason,
    changes: JSON.parse(String(row.changes)),
    planDigest: row.plan_digest,
  })
}

export function escalationOf(row: Row): Escalation {
  return Escalation.parse({
    id: row.id,
    runId: row.run_id,
    findingId: row.finding_id,
    inventory: row.inventory,
    status: row.status,
    rule: row.rule,
    entity: row.entity,
    evidence: JSON.parse(String(row.evidence)),
    evidenceDigest: row.evidence_digest,
    tried: JSON.parse(String(row.tried)),
    rootCauseGuess: row.root_cause_guess,
    summary: row.summary,
    nextStep: row.next_step,
    seen: row.seen,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    closedAt: row.closed_at,
    closedBy: row.closed_by,
    note: row.note,
    planId: row.plan_id,
  })
}

/** The state store on a SQLite file (WAL, so readers never wait for the audit). */
export class SqliteStateStore implements StateStore {
  readonly location: string
  private readonly db: SqliteConnection

  private constructor(location: string, db: SqliteConnection) {
    this.location = location
    this.db = db
  }

  static open(path: string): SqliteStateStore {
    let db: SqliteConnection
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), {recursive: true})
      db = new SqliteConnection(path)
      db.exec('PRAGMA journal_mode = WAL')
      // WAL with NORMAL: a commit is not synced until checkpoint. A decision lost to power loss is
      // safe to make again: applying a plan is idempotent under its writes' keys.
      db.exec('PRAGMA synchronous = NORMAL')
      db.exec(STATE_SCHEMA_SQL)
    } catch (error) {
      throw new ConfigError(`cannot open the state store ${path}: ${(error as Error).message}`, {
        code: 'STATE_UNUSABLE',
        cause: error,
        suggestions: ['Point --state at a writable file (it is created when missing), or remove a corrupt one.'],
      })
    }
    return new SqliteStateStore(path, db)
  }

  async recordRunStarted(run: RunRecord): Promise<void> {
    this.db.run(
      'INSERT OR REPLACE INTO runs (id, inventory, engine, dry_run, started_at, log_file) VALUES (?, ?, ?, ?, ?, ?)',
      run.id,
      run.inventory,
      run.engine,
      run.dryRun ? 1 : 0,
      run.startedAt,
      run.logFile,
    )
  }

  async recordRunFinished(runId: string, summary: unknown, exitCode: number): Promise<void> {
    this.db.run(
      'UPDATE runs SET finished_at = ?, summary = ?, exit_code = ? WHERE id = ?',
      new Date().toISOString(),
      JSON.stringify(summary),
      exitCode,
      runId,
    )
  }

  async recordOutcome(outcome: OutcomeRecord): Promise<void> {
    this.db.run(
      'INSERT OR REPLACE INTO outcomes ' +
        '(run_id, finding_id, outcome, root_cause, summary, plan_id, approval_id, escalation_id) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      outcome.runId,
      outcome.findingId,
      outcome.outcome,
      outcome.rootCause,
      outcome.summary,
      outcome.planId,
      outcome.approvalId,
      outcome.escalationId,
    )
  }

  async savePlan(plan: Plan): Promise<void> {
    this.db.run(
      'INSERT OR IGNORE INTO plans (id, run_id, finding_id, fingerprint, digest, created_at, body) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?)',
      plan.id,
      plan.runId,
      plan.findingId,
      plan.fingerprint,
      planDigest(plan),
      plan.createdAt,
      JSON.stringify(plan),
    )
  }

  async getPlan(planId: string): Promise<Plan | undefined> {
    const row = this.db.get<{body: string}>('SELECT body FROM plans WHERE id = ?', planId)
    return row ? PlanSchema.parse(JSON.parse(row.body)) : undefined
  }

  async park(plan: Plan, expiresAt: Date): Promise<Approval> {
    const existing = this.db.get<Row>(
      `SELECT * FROM approvals WHERE finding_id = ? AND fingerprint = ? AND status = 'pending'`,
      plan.findingId,
      plan.fingerprint,
    )
    if (existing) return approvalOf(existing)
    await this.savePlan(plan)
    const id = newId('A')
    this.db.run(
      `INSERT INTO approvals (id, plan_id, run_id, finding_id, inventory, status, max_impact, writes, summary,
         root_cause, requested_at, expires_at, plan_digest, fingerprint)
       VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)`,
      id,
      plan.id,
      plan.runId,
      plan.findingId,
      plan.inventory,
      plan.maxImpact,
      plan.writes.length,
      plan.summary,
      plan.rootCause,
      new Date().toISOString(),
      expiresAt.toISOString(),
      planDigest(plan),
      plan.fingerprint,
    )
    return (await this.getApproval(id))!
  }

  async getApproval(id: string): Promise<Approval | undefined> {
    const row = this.db.get<Row>('SELECT * FROM approvals WHERE id = ?', id)
    return row ? approvalOf(row) : undefined
  }

  async listApprovals(filter: {status?: ApprovalStatus} = {}): Promise<Approval[]> {
    // A pending plan past its time is expired: said so when listed, not only when someone tries to approve it.
    const now = new Date().toISOString()
    this.db.run(
      `UPDATE approvals SET status = 'expired', decided_at = ? WHERE status = 'pending' AND expires_at < ?`,
      now,
      now,
    )
    const rows = filter.status
      ? this.db.all<Row>('SELECT * FROM approvals WHERE status = ? ORDER BY requested_at, id', filter.status)
      : this.db.all<Row>('SELECT * FROM approvals ORDER BY requested_at, id')
    return rows.map(approvalOf)
  }

  async decideApproval(
    id: string,
    expected: ApprovalStatus,
    decision: ApprovalDecision,
  ): Promise<Approval | undefined> {
    const changed = this.db.run(
      `UPDATE approvals SET status = ?, decided_at = ?, decided_by = COALESCE(?, decided_by),
         reason = COALESCE(?, reason), changes = ?
       WHERE id = ? AND status = ?`,
      decision.status,
      new Date().toISOString(),
      decision.by ?? null,
      decision.reason ?? null,
      JSON.stringify(decision.changes ?? []),
      id,
      expected,
    )
    return changed.changes === 1 ? this.getApproval(id) : undefined
  }

  async escalate(input: EscalationInput): Promise<Escalation> {
    const now = new Date().toISOString()
    const open = this.db.get<Row>(
      `SELECT * FROM escalations WHERE finding_id = ? AND evidence_digest = ? AND status = 'open'`,
      input.findingId,
      input.evidenceDigest,
    )
    if (open) {
      this.db.run(
        'UPDATE escalations SET seen = seen + 1, last_seen_at = ?, run_id = ?, tried = ?, root_cause_guess = ?, ' +
          'summary = ?, next_step = ?, plan_id = ? WHERE id = ?',
        now,
        input.runId,
        JSON.stringify(input.tried),
        input.rootCauseGuess,
        input.summary,
        input.nextStep,
        input.planId,
        open.id,
      )
      return (await this.getEscalation(String(open.id)))!
    }
    const id = newId('E')
    this.db.run(
      `INSERT INTO escalations (id, run_id, finding_id, inventory, status, rule, entity, evidence, evidence_digest,
         tried, root_cause_guess, summary, next_step, seen, created_at, last_seen_at, plan_id)
       VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
      id,
      input.runId,
      input.findingId,
      input.inventory,
      input.rule,
      input.entity,
      JSON.stringify(input.evidence),
      input.evidenceDigest,
      JSON.stringify(input.tried),
      input.rootCauseGuess,
      input.summary,
      input.nextStep,
      now,
      now,
      input.planId,
    )
    return (await this.getEscalation(id))!
  }

  async getEscalation(id: string): Promise<Escalation | undefined> {
    const row = this.db.get<Row>('SELECT * FROM escalations WHERE id = ?', id)
    return row ? escalationOf(row) : undefined
  }

  async listEscalations(filter: {status?: Escalation['status']} = {}): Promise<Escalation[]> {
    const rows = filter.status
      ? this.db.all<Row>('SELECT * FROM escalations WHERE status = ? ORDER BY created_at, id', filter.status)
      : this.db.all<Row>('SELECT * FROM escalations ORDER BY created_at, id')
    return rows.map(escalationOf)
  }

  async closeEscalation(id: string, note: string, by: string): Promise<Escalation | undefined> {
    const changed = this.db.run(
      `UPDATE escalations SET status = 'closed', closed_at = ?, closed_by = ?, note = ?
       WHERE id = ? AND status = 'open'`,
      new Date().toISOString(),
      by,
      note,
      id,
    )
    return changed.changes === 1 ? this.getEscalation(id) : undefined
  }

  close(): void {
    this.db.close()
  }
}
