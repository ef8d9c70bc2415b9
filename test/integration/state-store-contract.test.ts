import {rmSync} from 'node:fs'
import {join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import pg from 'pg'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {evidenceDigest, PlanSchema, type Plan} from '../../src/agent/plan.js'
import {PostgresStateStore} from '../../src/state/postgres-state.js'
import {SqliteStateStore} from '../../src/state/sqlite-state.js'
import type {EscalationInput, OutcomeRecord, StateStore} from '../../src/state/state-store.js'
import {temporaryDirectory} from '../helpers/cli.js'
import {createTestDatabase, postgresUnavailable} from '../helpers/postgres.js'

/*
 * One contract, run against both dialects of the state store (docs/architecture.md, "State
 * store"): whatever the backend, the same calls leave the same rows and make the same decisions.
 */

const skipReason = await postgresUnavailable()
if (skipReason) console.warn(`SKIPPING the PostgreSQL half of the state store contract: ${skipReason}`)

type Row = Record<string, unknown>

interface Backend {
  /** Opens another store on the same database: another connection, as another process would have. */
  open(): Promise<StateStore>
  /** Every row of one of the store's tables, read past the store. */
  rows(table: string, orderBy: string): Promise<Row[]>
  dispose(): Promise<void>
}

async function sqliteBackend(): Promise<Backend> {
  const directory = temporaryDirectory()
  const path = join(directory, '.invagent', 'state.db')
  return {
    open: async () => SqliteStateStore.open(path),
    async rows(table, orderBy) {
      const db = new DatabaseSync(path, {readOnly: true})
      try {
        return db.prepare(`SELECT * FROM ${table} ORDER BY ${orderBy}`).all() as Row[]
      } finally {
        db.close()
      }
    },
    dispose: async () => rmSync(directory, {recursive: true, force: true}),
  }
}

async function postgresBackend(): Promise<Backend> {
  const database = await createTestDatabase('state_contract')
  return {
    open: () => PostgresStateStore.open(database.url),
    async rows(table, orderBy) {
      const client = new pg.Client({connectionString: database.url})
      await client.connect()
      try {
        return (await client.query(`SELECT * FROM invagent.${table} ORDER BY ${orderBy}`)).rows as Row[]
      } finally {
        await client.end()
      }
    },
    dispose: database.drop,
  }
}

function planFor(findingId: string, fingerprint: string, runId = 'run-1'): Plan {
  return PlanSchema.parse({
    schemaVersion: 1,
    id: `P-${findingId}-${fingerprint}-${runId}`,
    runId,
    findingId,
    finding: {rule: 'ledger_mismatch', entity: 'P-0001', severity: 'high', evidence: {ledger: 7, onHand: 5}},
    inventory: 'sqlite:inventory.db',
    createdAt: new Date().toISOString(),
    writes: [
      {
        tool: 'adjust_on_hand',
        args: {partId: 'P-0001', delta: 2},
        impact: {partId: 'P-0001', onHandDelta: 2, reservedDelta: 0},
        idempotencyKey: `${findingId}:adjust`,
      },
    ],
    rootCause: 'a receipt posted to the ledger only',
    summary: 'set on hand to the ledger',
    validation: {validated: true, problems: [], findingsBefore: [findingId]},
    scope: {partIds: ['P-0001'], txnIds: [], reservationIds: [], remapTargets: {}},
    reads: {
      selection: {parts: ['P-0001'], ledgers: ['P-0001'], transactions: [], externalRefs: []},
      skus: [],
      events: [],
    },
    fingerprint,
    seen: {
      rows: {parts: [], uom_conversions: [], sku_aliases: [], transactions: [], reservations: []},
      skus: {},
      events: {},
    },
    evidenceDigest: evidenceDigest({ledger: 7, onHand: 5}),
    engine: {name: 'rules', model: null, promptVersion: 'v1'},
    maxImpact: 2,
    needsApproval: true,
  })
}

function escalationFor(findingId: string, evidence: Record<string, unknown>, runId: string): EscalationInput {
  return {
    runId,
    findingId,
    inventory: 'sqlite:inventory.db',
    rule: 'stuck_pending',
    entity: 'T-1',
    evidence,
    evidenceDigest: evidenceDigest(evidence),
    tried: [{tool: 'get_transaction', args: {id: 'T-1'}, outcome: 'pending for 9 days'}],
    rootCauseGuess: `no confirmation (${runId})`,
    summary: 'a transfer never confirmed',
    nextStep: 'ask the warehouse',
    planId: null,
  }
}

const BACKENDS: Array<[string, () => Promise<Backend>, boolean]> = [
  ['SQLite', sqliteBackend, true],
  ['PostgreSQL', postgresBackend, skipReason === undefined],
]

for (const [name, create, available] of BACKENDS) {
  describe.runIf(available)(`the state store contract on ${name}`, () => {
    let backend: Backend
    const opened: StateStore[] = []
    const open = async () => {
      const store = await backend.open()
      opened.push(store)
      return store
    }
    beforeEach(async () => {
      backend = await create()
    })
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close()
      await backend.dispose()
    })

    it('parks a plan once per finding and fingerprint, lists it and keeps the plan', async () => {
      const store = await open()
      const plan = planFor('F-1', 'fp-a')
      const approval = await store.park(plan, new Date(Date.now() + 3_600_000))
      expect(approval).toMatchObject({
        id: expect.stringMatching(/^A-[0-9a-f]{8}$/),
        planId: plan.id,
        findingId: 'F-1',
        status: 'pending',
        maxImpact: 2,
        writes: 1,
        decidedAt: null,
        changes: [],
      })
      expect(await store.getPlan(plan.id)).toEqual(plan)
      expect(await store.getPlan('P-none')).toBeUndefined()

      const again = await store.park(planFor('F-1', 'fp-a', 'run-2'), new Date(Date.now() + 3_600_000))
      expect(again.id).toBe(approval.id)
      const other = await store.park(planFor('F-1', 'fp-b'), new Date(Date.now() + 3_600_000))
      expect(other.id).not.toBe(approval.id)

      const listed = await store.listApprovals({status: 'pending'})
      expect(listed.map((item) => item.id).sort()).toEqual([approval.id, other.id].sort())
      expect(await store.getApproval(approval.id)).toEqual(approval)
      expect(await store.getApproval('A-none')).toBeUndefined()
    })

    it('lets exactly one of two stores deciding the same approval at once win (compare-and-set)', async () => {
      const [first, second] = [await open(), await open()]
      const approval = await first.park(planFor('F-2', 'fp-a'), new Date(Date.now() + 3_600_000))
      const decisions = await Promise.all(
        [first, second].map((store, index) =>
          store.decideApproval(approval.id, 'pending', {status: 'approving', by: `person-${index}`}),
        ),
      )
      const winners = decisions.filter((decision) => decision !== undefined)
      expect(winners).toHaveLength(1)
      expect(winners[0]).toMatchObject({status: 'approving', decidedBy: expect.stringMatching(/^person-[01]$/)})
      expect(await second.getApproval(approval.id)).toEqual(winners[0])

      // A decision against a status that is no longer current changes nothing.
      expect(await second.decideApproval(approval.id, 'pending', {status: 'rejected', by: 'late'})).toBeUndefined()
      // The next step keeps who decided when it does not say, and records what changed.
      const stale = await second.decideApproval(approval.id, 'approving', {status: 'stale', changes: ['parts P-0001']})
      expect(stale).toMatchObject({status: 'stale', decidedBy: winners[0]!.decidedBy, changes: ['parts P-0001']})
      const rows = await backend.rows('approvals', 'id')
      expect(rows).toHaveLength(1)
      expect(rows[0]).toMatchObject({id: approval.id, status: 'stale', decided_by: winners[0]!.decidedBy})
    })

    it('expires a pending plan past its time when listed, and then no one can approve it', async () => {
      const store = await open()
      const old = await store.park(planFor('F-3', 'fp-a'), new Date(Date.now() - 1000))
      const fresh = await store.park(planFor('F-4', 'fp-a'), new Date(Date.now() + 3_600_000))
      expect((await store.listApprovals({status: 'pending'})).map((item) => item.id)).toEqual([fresh.id])
      const expired = await store.getApproval(old.id)
      expect(expired).toMatchObject({status: 'expired', decidedBy: null})
      expect(Date.parse(expired!.decidedAt!)).toBeGreaterThanOrEqual(Date.parse(old.requestedAt))
      expect(await store.decideApproval(old.id, 'pending', {status: 'approving', by: 'alice'})).toBeUndefined()
      const statuses = new Map((await store.listApprovals()).map((item) => [item.id, item.status]))
      expect(statuses).toEqual(
        new Map([
          [old.id, 'expired'],
          [fresh.id, 'pending'],
        ]),
      )
    })

    it('counts an open escalation of the same finding and evidence again instead of queueing it twice', async () => {
      const [first, second] = [await open(), await open()]
      const queued = await first.escalate(escalationFor('F-5', {days: 9}, 'run-1'))
      expect(queued).toMatchObject({status: 'open', seen: 1, runId: 'run-1', closedAt: null})
      const counted = await second.escalate(escalationFor('F-5', {days: 9}, 'run-2'))
      expect(counted).toMatchObject({id: queued.id, seen: 2, runId: 'run-2', rootCauseGuess: 'no confirmation (run-2)'})
      expect(counted.createdAt).toBe(queued.createdAt)
      expect(counted.lastSeenAt >= queued.lastSeenAt).toBe(true)

      const changed = await first.escalate(escalationFor('F-5', {days: 10}, 'run-3'))
      expect(changed.id).not.toBe(queued.id)
      expect(changed.seen).toBe(1)

      const closed = await first.closeEscalation(queued.id, 'confirmed by hand', 'bob')
      expect(closed).toMatchObject({status: 'closed', closedBy: 'bob', note: 'confirmed by hand', seen: 2})
      expect(await second.closeEscalation(queued.id, 'again', 'carol')).toBeUndefined()
      const requeued = await second.escalate(escalationFor('F-5', {days: 9}, 'run-4'))
      expect(requeued.id).not.toBe(queued.id)
      expect(requeued.seen).toBe(1)

      expect((await first.listEscalations({status: 'open'})).map((item) => item.id).sort()).toEqual(
        [changed.id, requeued.id].sort(),
      )
      expect((await first.listEscalations({status: 'closed'})).map((item) => item.id)).toEqual([queued.id])
      expect(await first.listEscalations()).toHaveLength(3)
      expect(await first.getEscalation(queued.id)).toEqual(closed)
      expect(await first.getEscalation('E-none')).toBeUndefined()
    })

    it('records runs and one outcome per finding and run, the last one recorded winning', async () => {
      const store = await open()
      const startedAt = new Date().toISOString()
      await store.recordRunStarted({
        id: 'run-9',
        inventory: 'sqlite:inventory.db',
        engine: 'rules',
        dryRun: false,
        startedAt,
        logFile: 'logs/run-9.jsonl',
      })
      const outcome = {
        runId: 'run-9',
        findingId: 'F-6',
        outcome: 'parked',
        rootCause: 'rc',
        summary: 'parked for a person',
        planId: 'P-1',
        approvalId: 'A-1',
        escalationId: null,
      }
      await store.recordOutcome(outcome)
      await store.recordOutcome({...outcome, outcome: 'resolved', approvalId: null})
      await store.recordOutcome({...outcome, findingId: 'F-7', outcome: 'escalated', escalationId: 'E-1'})
      await store.recordRunFinished('run-9', {resolved: 1, escalated: 1}, 1)

      const runs = await backend.rows('runs', 'id')
      expect(runs).toEqual([
        {
          id: 'run-9',
          inventory: 'sqlite:inventory.db',
          engine: 'rules',
          dry_run: 0,
          started_at: startedAt,
          finished_at: expect.any(String),
          log_file: 'logs/run-9.jsonl',
          summary: JSON.stringify({resolved: 1, escalated: 1}),
          exit_code: 1,
        },
      ])
      expect(await backend.rows('outcomes', 'finding_id')).toEqual([
        {...rowOf(outcome), outcome: 'resolved', approval_id: null},
        {...rowOf(outcome), finding_id: 'F-7', outcome: 'escalated', escalation_id: 'E-1'},
      ])
    })

    it('opens again over what it wrote, schema version 1', async () => {
      const store = await open()
      const approval = await store.park(planFor('F-8', 'fp-a'), new Date(Date.now() + 3_600_000))
      await store.close()
      opened.splice(opened.indexOf(store), 1)
      const reopened = await open()
      expect(await reopened.getApproval(approval.id)).toEqual(approval)
      expect(await backend.rows('state_meta', 'key')).toEqual([{key: 'schema_version', value: '1'}])
    })
  })
}

function rowOf(outcome: OutcomeRecord): Row {
  return {
    run_id: outcome.runId,
    finding_id: outcome.findingId,
    outcome: outcome.outcome,
    root_cause: outcome.rootCause,
    summary: outcome.summary,
    plan_id: outcome.planId,
    approval_id: outcome.approvalId,
    escalation_id: outcome.escalationId,
  }
}
