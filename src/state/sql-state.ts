import {randomBytes} from 'node:crypto'

import {planDigest, PlanSchema, type Plan} from '../agent/plan.js'
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

/*
 * The state store written once, over a small SQL dialect (docs/architecture.md, "State store"):
 * the statements, the schema and the row mapping live here; a dialect says how a placeholder and
 * a table are written, which column types the schema uses, and how a statement is run. SQLite
 * (src/state/sqlite-state.ts) and PostgreSQL (src/state/postgres-state.ts) are thin dialects.
 */

export type SqlValue = string | number | null
export type Row = Record<string, SqlValue>

export const STATE_TABLES = ['runs', 'outcomes', 'plans', 'approvals', 'escalations', 'state_meta'] as const
export type StateTable = (typeof STATE_TABLES)[number]

/** The version recorded in state_meta; a change to the tables below bumps it, with a migration. */
export const STATE_SCHEMA_VERSION = '1'

export interface SqlDialect {
  /** How a statement names a table: `runs` on SQLite, `invagent.runs` on PostgreSQL. */
  table(name: StateTable): string
  /** The placeholder of the index-th parameter (from 1): `?` on SQLite, `$1` on PostgreSQL. */
  placeholder(index: number): string
  /** The column types of the schema. */
  readonly types: {text: string; integer: string; bigint: string}
  /** Runs a statement; resolves to how many rows it changed (what every compare-and-set checks). */
  run(sql: string, params: SqlValue[]): Promise<number>
  one<T = Row>(sql: string, params: SqlValue[]): Promise<T | undefined>
  all<T = Row>(sql: string, params: SqlValue[]): Promise<T[]>
  close(): void | Promise<void>
}

/** Writes each `?` of a statement as the dialect's placeholder (the statements below hold no `?` in a literal). */
export function compile(dialect: SqlDialect, text: string): string {
  let index = 0
  return text.replace(/\?/g, () => dialect.placeholder(++index))
}

/** The tables, created when missing: what opening a store runs (existing files keep their rows). */
export function stateSchemaSql(dialect: SqlDialect): string {
  const t = (name: StateTable) => dialect.table(name)
  const {text, integer, bigint} = dialect.types
  return `
CREATE TABLE IF NOT EXISTS ${t('runs')} (
  id ${text} PRIMARY KEY, inventory ${text} NOT NULL, engine ${text} NOT NULL, dry_run ${integer} NOT NULL,
  started_at ${text} NOT NULL, finished_at ${text}, log_file ${text} NOT NULL, summary ${text}, exit_code ${integer}
);
CREATE TABLE IF NOT EXISTS ${t('outcomes')} (
  run_id ${text} NOT NULL, finding_id ${text} NOT NULL, outcome ${text} NOT NULL, root_cause ${text} NOT NULL,
  summary ${text} NOT NULL, plan_id ${text}, approval_id ${text}, escalation_id ${text},
  PRIMARY KEY (run_id, finding_id)
);
CREATE TABLE IF NOT EXISTS ${t('plans')} (
  id ${text} PRIMARY KEY, run_id ${text} NOT NULL, finding_id ${text} NOT NULL, fingerprint ${text} NOT NULL,
  digest ${text} NOT NULL, created_at ${text} NOT NULL, body ${text} NOT NULL
);
CREATE TABLE IF NOT EXISTS ${t('approvals')} (
  id ${text} PRIMARY KEY, plan_id ${text} NOT NULL, run_id ${text} NOT NULL, finding_id ${text} NOT NULL,
  inventory ${text} NOT NULL, status ${text} NOT NULL, max_impact ${bigint} NOT NULL, writes ${integer} NOT NULL,
  summary ${text} NOT NULL, root_cause ${text} NOT NULL, requested_at ${text} NOT NULL, expires_at ${text} NOT NULL,
  decided_at ${text}, decided_by ${text}, reason ${text}, changes ${text} NOT NULL DEFAULT '[]',
  plan_digest ${text} NOT NULL, fingerprint ${text} NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_approvals_status ON ${t('approvals')} (status, requested_at);
CREATE TABLE IF NOT EXISTS ${t('escalations')} (
  id ${text} PRIMARY KEY, run_id ${text} NOT NULL, finding_id ${text} NOT NULL, inventory ${text} NOT NULL,
  status ${text} NOT NULL, rule ${text} NOT NULL, entity ${text} NOT NULL, evidence ${text} NOT NULL,
  evidence_digest ${text} NOT NULL, tried ${text} NOT NULL, root_cause_guess ${text} NOT NULL,
  summary ${text} NOT NULL, next_step ${text} NOT NULL, seen ${integer} NOT NULL, created_at ${text} NOT NULL,
  last_seen_at ${text} NOT NULL, closed_at ${text}, closed_by ${text}, note ${text}, plan_id ${text}
);
CREATE INDEX IF NOT EXISTS idx_escalations_status ON ${t('escalations')} (status, created_at);
CREATE TABLE IF NOT EXISTS ${t('state_meta')} (key ${text} PRIMARY KEY, value ${text} NOT NULL);
INSERT INTO ${t('state_meta')} (key, value) VALUES ('schema_version', '${STATE_SCHEMA_VERSION}')
  ON CONFLICT (key) DO NOTHING;
`
}

/** INSERT, or on a conflict on `key` the new values of the other columns (both dialects' ON CONFLICT). */
function upsert(table: string, columns: string[], key: string[]): string {
  const set = columns.filter((column) => !key.includes(column)).map((column) => `${column} = excluded.${column}`)
  return (
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ` +
    `ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${set.join(', ')}`
  )
}

/** Every statement of the store, in the dialect's spelling: compiled once, when the store opens. */
function statementsFor(dialect: SqlDialect) {
  const t = (name: StateTable) => dialect.table(name)
  const sql = (text: string) => compile(dialect, text)
  return {
    runStarted: sql(upsert(t('runs'), ['id', 'inventory', 'engine', 'dry_run', 'started_at', 'log_file'], ['id'])),
    runFinished: sql(`UPDATE ${t('runs')} SET finished_at = ?, summary = ?, exit_code = ? WHERE id = ?`),
    outcome: sql(
      upsert(
        t('outcomes'),
        ['run_id', 'finding_id', 'outcome', 'root_cause', 'summary', 'plan_id', 'approval_id', 'escalation_id'],
        ['run_id', 'finding_id'],
      ),
    ),
    savePlan: sql(
      `INSERT INTO ${t('plans')} (id, run_id, finding_id, fingerprint, digest, created_at, body)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    ),
    getPlan: sql(`SELECT body FROM ${t('plans')} WHERE id = ?`),
    pendingFor: sql(`SELECT * FROM ${t('approvals')} WHERE finding_id = ? AND fingerprint = ? AND status = 'pending'`),
    park: sql(
      `INSERT INTO ${t('approvals')} (id, plan_id, run_id, finding_id, inventory, status, max_impact, writes, summary,
         root_cause, requested_at, expires_at, plan_digest, fingerprint)
       VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    getApproval: sql(`SELECT * FROM ${t('approvals')} WHERE id = ?`),
    expire: sql(
      `UPDATE ${t('approvals')} SET status = 'expired', decided_at = ? WHERE status = 'pending' AND expires_at < ?`,
    ),
    approvalsWith: sql(`SELECT * FROM ${t('approvals')} WHERE status = ? ORDER BY requested_at, id`),
    approvals: sql(`SELECT * FROM ${t('approvals')} ORDER BY requested_at, id`),
    // The compare-and-set every decision is: it changes the row only while its status is still `expected`.
    decide: sql(
      `UPDATE ${t('approvals')} SET status = ?, decided_at = ?, decided_by = COALESCE(?, decided_by),
         reason = COALESCE(?, reason), changes = ?
       WHERE id = ? AND status = ?`,
    ),
    openFor: sql(`SELECT * FROM ${t('escalations')} WHERE finding_id = ? AND evidence_digest = ? AND status = 'open'`),
    seenAgain: sql(
      `UPDATE ${t('escalations')} SET seen = seen + 1, last_seen_at = ?, run_id = ?, tried = ?,
         root_cause_guess = ?, summary = ?, next_step = ?, plan_id = ? WHERE id = ?`,
    ),
    escalate: sql(
      `INSERT INTO ${t('escalations')} (id, run_id, finding_id, inventory, status, rule, entity, evidence,
         evidence_digest, tried, root_cause_guess, summary, next_step, seen, created_at, last_seen_at, plan_id)
       VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
    ),
    getEscalation: sql(`SELECT * FROM ${t('escalations')} WHERE id = ?`),
    escalationsWith: sql(`SELECT * FROM ${t('escalations')} WHERE status = ? ORDER BY created_at, id`),
    escalations: sql(`SELECT * FROM ${t('escalations')} ORDER BY created_at, id`),
    closeEscalation: sql(
      `UPDATE ${t('escalations')} SET status = 'closed', closed_at = ?, closed_by = ?, note = ?
       WHERE id = ? AND status = 'open'`,
    ),
  }
}

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

/** The StateStore over any dialect: every decision a compare-and-set on the current status. */
export class SqlStateStore implements StateStore {
  readonly location: string
  private readonly dialect: SqlDialect
  private readonly sql: ReturnType<typeof statementsFor>

  constructor(location: string, dialect: SqlDialect) {
    this.location = location
    this.dialect = dialect
    this.sql = statementsFor(dialect)
  }

  async recordRunStarted(run: RunRecord): Promise<void> {
    await this.dialect.run(this.sql.runStarted, [
      run.id,
      run.inventory,
      run.engine,
      run.dryRun ? 1 : 0,
      run.startedAt,
      run.logFile,
    ])
  }

  async recordRunFinished(runId: string, summary: unknown, exitCode: number): Promise<void> {
    await this.dialect.run(this.sql.runFinished, [new Date().toISOString(), JSON.stringify(summary), exitCode, runId])
  }

  async recordOutcome(outcome: OutcomeRecord): Promise<void> {
    await this.dialect.run(this.sql.outcome, [
      outcome.runId,
      outcome.findingId,
      outcome.outcome,
      outcome.rootCause,
      outcome.summary,
      outcome.planId,
      outcome.approvalId,
      outcome.escalationId,
    ])
  }

  async savePlan(plan: Plan): Promise<void> {
    await this.dialect.run(this.sql.savePlan, [
      plan.id,
      plan.runId,
      plan.findingId,
      plan.fingerprint,
      planDigest(plan),
      plan.createdAt,
      JSON.stringify(plan),
    ])
  }

  async getPlan(planId: string): Promise<Plan | undefined> {
    const row = await this.dialect.one<{body: string}>(this.sql.getPlan, [planId])
    return row ? PlanSchema.parse(JSON.parse(row.body)) : undefined
  }

  async park(plan: Plan, expiresAt: Date): Promise<Approval> {
    const existing = await this.dialect.one(this.sql.pendingFor, [plan.findingId, plan.fingerprint])
    if (existing) return approvalOf(existing)
    await this.savePlan(plan)
    const id = newId('A')
    await this.dialect.run(this.sql.park, [
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
    ])
    return (await this.getApproval(id))!
  }

  async getApproval(id: string): Promise<Approval | undefined> {
    const row = await this.dialect.one(this.sql.getApproval, [id])
    return row ? approvalOf(row) : undefined
  }

  async listApprovals(filter: {status?: ApprovalStatus} = {}): Promise<Approval[]> {
    // A pending plan past its time is expired: said so when listed, not only when someone tries to approve it.
    const now = new Date().toISOString()
    await this.dialect.run(this.sql.expire, [now, now])
    const rows = filter.status
      ? await this.dialect.all(this.sql.approvalsWith, [filter.status])
      : await this.dialect.all(this.sql.approvals, [])
    return rows.map(approvalOf)
  }

  async decideApproval(
    id: string,
    expected: ApprovalStatus,
    decision: ApprovalDecision,
  ): Promise<Approval | undefined> {
    const changed = await this.dialect.run(this.sql.decide, [
      decision.status,
      new Date().toISOString(),
      decision.by ?? null,
      decision.reason ?? null,
      JSON.stringify(decision.changes ?? []),
      id,
      expected,
    ])
    return changed === 1 ? this.getApproval(id) : undefined
  }

  async escalate(input: EscalationInput): Promise<Escalation> {
    const now = new Date().toISOString()
    const open = await this.dialect.one(this.sql.openFor, [input.findingId, input.evidenceDigest])
    if (open) {
      await this.dialect.run(this.sql.seenAgain, [
        now,
        input.runId,
        JSON.stringify(input.tried),
        input.rootCauseGuess,
        input.summary,
        input.nextStep,
        input.planId,
        open.id,
      ])
      return (await this.getEscalation(String(open.id)))!
    }
    const id = newId('E')
    await this.dialect.run(this.sql.escalate, [
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
    ])
    return (await this.getEscalation(id))!
  }

  async getEscalation(id: string): Promise<Escalation | undefined> {
    const row = await this.dialect.one(this.sql.getEscalation, [id])
    return row ? escalationOf(row) : undefined
  }

  async listEscalations(filter: {status?: Escalation['status']} = {}): Promise<Escalation[]> {
    const rows = filter.status
      ? await this.dialect.all(this.sql.escalationsWith, [filter.status])
      : await this.dialect.all(this.sql.escalations, [])
    return rows.map(escalationOf)
  }

  async closeEscalation(id: string, note: string, by: string): Promise<Escalation | undefined> {
    const changed = await this.dialect.run(this.sql.closeEscalation, [new Date().toISOString(), by, note, id])
    return changed === 1 ? this.getEscalation(id) : undefined
  }

  close(): void | Promise<void> {
    return this.dialect.close()
  }
}
