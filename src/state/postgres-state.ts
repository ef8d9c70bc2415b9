import {planDigest, PlanSchema, type Plan} from '../agent/plan.js'
import {ConfigError} from '../errors.js'
import {PostgresConnection} from '../inventory/postgres/connection.js'
import {approvalOf, escalationOf, newId, type Row} from './sqlite-state.js'
import type {
  Approval,
  ApprovalDecision,
  ApprovalStatus,
  Escalation,
  EscalationInput,
  OutcomeRecord,
  RunRecord,
  StateStore,
} from './state-store.js'

/** The schema invagent's own tables live in, beside an inventory on PostgreSQL. */
export const STATE_SCHEMA = 'invagent'

const STATE_SCHEMA_SQL = `
CREATE SCHEMA IF NOT EXISTS invagent;
CREATE TABLE IF NOT EXISTS invagent.runs (
  id text PRIMARY KEY, inventory text NOT NULL, engine text NOT NULL, dry_run integer NOT NULL,
  started_at text NOT NULL, finished_at text, log_file text NOT NULL, summary text, exit_code integer
);
CREATE TABLE IF NOT EXISTS invagent.outcomes (
  run_id text NOT NULL, finding_id text NOT NULL, outcome text NOT NULL, root_cause text NOT NULL,
  summary text NOT NULL, plan_id text, approval_id text, escalation_id text, PRIMARY KEY (run_id, finding_id)
);
CREATE TABLE IF NOT EXISTS invagent.plans (
  id text PRIMARY KEY, run_id text NOT NULL, finding_id text NOT NULL, fingerprint text NOT NULL,
  digest text NOT NULL, created_at text NOT NULL, body text NOT NULL
);
CREATE TABLE IF NOT EXISTS invagent.approvals (
  id text PRIMARY KEY, plan_id text NOT NULL, run_id text NOT NULL, finding_id text NOT NULL,
  inventory text NOT NULL, status text NOT NULL, max_impact bigint NOT NULL, writes integer NOT NULL,
  summary text NOT NULL, root_cause text NOT NULL, requested_at text NOT NULL, expires_at text NOT NULL,
  decided_at text, decided_by text, reason text, changes text NOT NULL DEFAULT '[]', plan_digest text NOT NULL,
  fingerprint text NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_approvals_status ON invagent.approvals (status, requested_at);
CREATE TABLE IF NOT EXISTS invagent.escalations (
  id text PRIMARY KEY, run_id text NOT NULL, finding_id text NOT NULL, inventory text NOT NULL,
  status text NOT NULL, rule text NOT NULL, entity text NOT NULL, evidence text NOT NULL,
  evidence_digest text NOT NULL, tried text NOT NULL, root_cause_guess text NOT NULL, summary text NOT NULL,
  next_step text NOT NULL, seen integer NOT NULL, created_at text NOT NULL, last_seen_at text NOT NULL,
  closed_at text, closed_by text, note text, plan_id text
);
CREATE INDEX IF NOT EXISTS idx_escalations_status ON invagent.escalations (status, created_at);
CREATE TABLE IF NOT EXISTS invagent.state_meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO invagent.state_meta (key, value) VALUES ('schema_version', '1') ON CONFLICT (key) DO NOTHING;
`

/**
 * The state store in the inventory's own PostgreSQL database, schema `invagent`
 * (docs/architecture.md, "State store"): the same tables as on SQLite, and every decision the
 * same compare-and-set on the current status (`UPDATE … WHERE id = $1 AND status = $2`), which
 * PostgreSQL's row locks make atomic between processes.
 */
export class PostgresStateStore implements StateStore {
  readonly location: string
  private readonly db: PostgresConnection

  private constructor(db: PostgresConnection) {
    this.db = db
    this.location = `${db.display} (schema ${STATE_SCHEMA})`
  }

  static async open(url: string): Promise<PostgresStateStore> {
    const db = await PostgresConnection.connect(url, {applicationName: 'invagent-state'})
    try {
      // Two processes creating the schema at once would collide: one at a time, by an advisory lock.
      await db.exec('BEGIN')
      await db.query(`SELECT pg_advisory_xact_lock(hashtext('invagent.state_schema'))`)
      await db.exec(STATE_SCHEMA_SQL)
      await db.exec('COMMIT')
    } catch (error) {
      await db.exec('ROLLBACK').catch(() => {})
      await db.close()
      throw new ConfigError(`cannot open the state store in ${db.display}: ${(error as Error).message}`, {
        code: 'STATE_UNUSABLE',
        cause: error,
        suggestions: [
          `Grant this role CREATE on the database (for schema ${STATE_SCHEMA}), or point --state at a SQLite file.`,
        ],
      })
    }
    return new PostgresStateStore(db)
  }

  async recordRunStarted(run: RunRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO invagent.runs (id, inventory, engine, dry_run, started_at, log_file) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET inventory = EXCLUDED.inventory, engine = EXCLUDED.engine,
         dry_run = EXCLUDED.dry_run, started_at = EXCLUDED.started_at, log_file = EXCLUDED.log_file`,
      [run.id, run.inventory, run.engine, run.dryRun ? 1 : 0, run.startedAt, run.logFile],
    )
  }

  async recordRunFinished(runId: string, summary: unknown, exitCode: number): Promise<void> {
    await this.db.query('UPDATE invagent.runs SET finished_at = $1, summary = $2, exit_code = $3 WHERE id = $4', [
      new Date().toISOString(),
      JSON.stringify(summary),
      exitCode,
      runId,
    ])
  }

  async recordOutcome(outcome: OutcomeRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO invagent.outcomes (run_id, finding_id, outcome, root_cause, summary, plan_id, approval_id,
         escalation_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (run_id, finding_id) DO UPDATE SET outcome = EXCLUDED.outcome, root_cause = EXCLUDED.root_cause,
         summary = EXCLUDED.summary, plan_id = EXCLUDED.plan_id, approval_id = EXCLUDED.approval_id,
         escalation_id = EXCLUDED.escalation_id`,
      [
        outcome.runId,
        outcome.findingId,
        outcome.outcome,
        outcome.rootCause,
        outcome.summary,
        outcome.planId,
        outcome.approvalId,
        outcome.escalationId,
      ],
    )
  }

  async savePlan(plan: Plan): Promise<void> {
    await this.db.query(
      `INSERT INTO invagent.plans (id, run_id, finding_id, fingerprint, digest, created_at, body)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
      [plan.id, plan.runId, plan.findingId, plan.fingerprint, planDigest(plan), plan.createdAt, JSON.stringify(plan)],
    )
  }

  async getPlan(planId: string): Promise<Plan | undefined> {
    const row = await this.db.one<{body: string}>('SELECT body FROM invagent.plans WHERE id = $1', [planId])
    return row ? PlanSchema.parse(JSON.parse(row.body)) : undefined
  }

  async park(plan: Plan, expiresAt: Date): Promise<Approval> {
    const existing = await this.db.one<Row>(
      `SELECT * FROM invagent.approvals WHERE finding_id = $1 AND fingerprint = $2 AND status = 'pending'`,
      [plan.findingId, plan.fingerprint],
    )
    if (existing) return approvalOf(existing)
    await this.savePlan(plan)
    const id = newId('A')
    await this.db.query(
      `INSERT INTO invagent.approvals (id, plan_id, run_id, finding_id, inventory, status, max_impact, writes, summary,
         root_cause, requested_at, expires_at, plan_digest, fingerprint)
       VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
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
      ],
    )
    return (await this.getApproval(id))!
  }

  async getApproval(id: string): Promise<Approval | undefined> {
    const row = await this.db.one<Row>('SELECT * FROM invagent.approvals WHERE id = $1', [id])
    return row ? approvalOf(row) : undefined
  }

  async listApprovals(filter: {status?: ApprovalStatus} = {}): Promise<Approval[]> {
    const now = new Date().toISOString()
    await this.db.query(
      `UPDATE invagent.approvals SET status = 'expired', decided_at = $1 WHERE status = 'pending' AND expires_at < $1`,
      [now],
    )
    const rows = filter.status
      ? await this.db.query<Row>('SELECT * FROM invagent.approvals WHERE status = $1 ORDER BY requested_at, id', [
          filter.status,
        ])
      : await this.db.query<Row>('SELECT * FROM invagent.approvals ORDER BY requested_at, id')
    return rows.map(approvalOf)
  }

  async decideApproval(
    id: string,
    expected: ApprovalStatus,
    decision: ApprovalDecision,
  ): Promise<Approval | undefined> {
    const changed = await this.db.run(
      `UPDATE invagent.approvals SET status = $1, decided_at = $2, decided_by = COALESCE($3, decided_by),
         reason = COALESCE($4, reason), changes = $5
       WHERE id = $6 AND status = $7`,
      [
        decision.status,
        new Date().toISOString(),
        decision.by ?? null,
        decision.reason ?? null,
        JSON.stringify(decision.changes ?? []),
        id,
        expected,
      ],
    )
    return changed === 1 ? this.getApproval(id) : undefined
  }

  async escalate(input: EscalationInput): Promise<Escalation> {
    const now = new Date().toISOString()
    const open = await this.db.one<Row>(
      `SELECT * FROM invagent.escalations WHERE finding_id = $1 AND evidence_digest = $2 AND status = 'open'`,
      [input.findingId, input.evidenceDigest],
    )
    if (open) {
      await this.db.query(
        `UPDATE invagent.escalations SET seen = seen + 1, last_seen_at = $1, run_id = $2, tried = $3,
           root_cause_guess = $4, summary = $5, next_step = $6, plan_id = $7 WHERE id = $8`,
        [
          now,
          input.runId,
          JSON.stringify(input.tried),
          input.rootCauseGuess,
          input.summary,
          input.nextStep,
          input.planId,
          open.id,
        ],
      )
      return (await this.getEscalation(String(open.id)))!
    }
    const id = newId('E')
    await this.db.query(
      `INSERT INTO invagent.escalations (id, run_id, finding_id, inventory, status, rule, entity, evidence,
         evidence_digest, tried, root_cause_guess, summary, next_step, seen, created_at, last_seen_at, plan_id)
       VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13, $14)`,
      [
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
        input.planId,
      ],
    )
    return (await this.getEscalation(id))!
  }

  async getEscalation(id: string): Promise<Escalation | undefined> {
    const row = await this.db.one<Row>('SELECT * FROM invagent.escalations WHERE id = $1', [id])
    return row ? escalationOf(row) : undefined
  }

  async listEscalations(filter: {status?: Escalation['status']} = {}): Promise<Escalation[]> {
    const rows = filter.status
      ? await this.db.query<Row>('SELECT * FROM invagent.escalations WHERE status = $1 ORDER BY created_at, id', [
          filter.status,
        ])
      : await this.db.query<Row>('SELECT * FROM invagent.escalations ORDER BY created_at, id')
    return rows.map(escalationOf)
  }

  async closeEscalation(id: string, note: string, by: string): Promise<Escalation | undefined> {
    const changed = await this.db.run(
      `UPDATE invagent.escalations SET status = 'closed', closed_at = $1, closed_by = $2, note = $3
       WHERE id = $4 AND status = 'open'`,
      [new Date().toISOString(), by, note, id],
    )
    return changed === 1 ? this.getEscalation(id) : undefined
  }

  async close(): Promise<void> {
    await this.db.close()
  }
}
