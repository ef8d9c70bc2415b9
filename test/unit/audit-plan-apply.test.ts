import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {AuditLog} from '../../src/agent/audit-log.js'
import {runAudit} from '../../src/agent/audit.js'
import type {Engine} from '../../src/engines/engine.js'
import {RulesEngine} from '../../src/engines/rules-engine.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {initInventory} from '../../src/simulate/generate.js'
import {SqliteStateStore} from '../../src/state/sqlite-state.js'
import {sha256OfFile, temporaryDirectory} from '../helpers/cli.js'

function setUp(seed = 21) {
  const directory = temporaryDirectory()
  const init = initInventory({path: join(directory, 'inv.db'), parts: 80, days: 10, faults: 26, seed})
  return {
    directory,
    db: init.db,
    backend: SqliteInventory.open(init.db),
    state: SqliteStateStore.open(':memory:'),
    log: AuditLog.create(join(directory, 'logs'), 'unit'),
  }
}

describe('plan, then apply', () => {
  it('fails the finding, not the run, when the apply unit cannot start (the inventory stays locked)', async () => {
    const {backend, state, log, db} = setUp()
    const before = sha256OfFile(db)
    // The inventory refuses every write unit, as a database locked by another writer for too long would.
    const locked = new Proxy(backend, {
      get(target, property, receiver) {
        if (property === 'unitOfWork') return async () => Promise.reject(new Error('database is locked'))
        const value = Reflect.get(target, property, receiver)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    try {
      const report = await runAudit({
        backend: locked,
        engine: new RulesEngine(),
        log,
        dryRun: false,
        state,
        maxFindings: 6,
      })
      expect(report.outcomes).toHaveLength(6)
      const failed = report.outcomes.filter((outcome) => outcome.outcome === 'failed')
      expect(failed.length).toBeGreaterThan(0)
      expect(failed[0].summary).toBe('applying the plan failed, nothing of it was kept: database is locked')
      expect(sha256OfFile(db)).toBe(before)
    } finally {
      log.close()
      state.close()
      backend.close()
    }
  })

  it('queues escalations in apply mode only: a dry run leaves no work for people', async () => {
    const {backend, state, log} = setUp()
    try {
      const dry = await runAudit({backend, engine: new RulesEngine(), log, dryRun: true, state})
      expect(dry.summary.escalated).toBeGreaterThan(0)
      expect(dry.outcomes.every((outcome) => outcome.escalationId === null)).toBe(true)
      expect(await state.listEscalations()).toEqual([])
      const applied = await runAudit({backend, engine: new RulesEngine(), log, dryRun: false, state})
      expect((await state.listEscalations()).length).toBe(applied.summary.escalated)
    } finally {
      log.close()
      state.close()
      backend.close()
    }
  })

  it('records the engine, the prompt version, the fingerprint and the keys in every parked plan', async () => {
    const {backend, state, log} = setUp()
    try {
      const report = await runAudit({backend, engine: new RulesEngine(), log, dryRun: false, state, approveAll: true})
      const parked = report.outcomes.filter((outcome) => outcome.outcome === 'parked')
      expect(parked.length).toBeGreaterThan(3)
      const plan = (await state.getPlan(parked[0].planId!))!
      expect(plan.engine).toMatchObject({name: 'rules', model: null})
      expect(plan.engine.promptVersion).toMatch(/^[0-9a-f]{16}$/)
      expect(plan.fingerprint).toMatch(/^[0-9a-f]{64}$/)
      expect(plan.evidenceDigest).toMatch(/^[0-9a-f]{64}$/)
      expect(plan.writes.every((write) => /^[0-9a-f]{64}$/.test(write.idempotencyKey))).toBe(true)
      expect(plan.validation).toMatchObject({validated: true, problems: []})
    } finally {
      log.close()
      state.close()
      backend.close()
    }
  })
})

/** The rules playbook, while another writer touches the finding's part on every step of the first `plans` plans. */
function racedEngine(backend: SqliteInventory, plans: number): Engine {
  const rules = new RulesEngine()
  let started = 0
  return {
    name: 'raced',
    start(finding) {
      const session = rules.start(finding)
      const racing = ++started <= plans
      return {
        async next(observation) {
          if (racing) backend.db.run('UPDATE parts SET location = location || ? WHERE id = ?', '.', finding.entity)
          return session.next(observation)
        },
      }
    },
  }
}

describe('a plan gone stale', () => {
  it('is planned again once and applied when the second plan holds', async () => {
    const {backend, state, log} = setUp()
    try {
      const report = await runAudit({
        backend,
        engine: racedEngine(backend, 1),
        log,
        dryRun: false,
        state,
        rules: ['ledger_mismatch'],
        maxFindings: 1,
      })
      expect(report.outcomes[0]).toMatchObject({outcome: 'resolved'})
      expect(report.outcomes[0].planId).toMatch(/-2$/)
    } finally {
      log.close()
      state.close()
      backend.close()
    }
  })

  it('is escalated with what changed when the second plan is stale too, and nothing is kept', async () => {
    const {backend, state, log} = setUp()
    try {
      const [finding] = await backend.detect(['ledger_mismatch'])
      const before = backend.db.get<{on_hand: number}>(
        'SELECT on_hand FROM parts WHERE id = ?',
        finding.entity,
      )!.on_hand
      const report = await runAudit({
        backend,
        engine: racedEngine(backend, 2),
        log,
        dryRun: false,
        state,
        rules: ['ledger_mismatch'],
        maxFindings: 1,
      })
      expect(report.outcomes[0].outcome).toBe('escalated')
      expect(report.outcomes[0].summary).toContain(`parts ${finding.entity}: location`)
      expect(backend.db.get<{on_hand: number}>('SELECT on_hand FROM parts WHERE id = ?', finding.entity)!.on_hand).toBe(
        before,
      )
      expect((await state.listEscalations()).map((escalation) => escalation.findingId)).toEqual([finding.id])
    } finally {
      log.close()
      state.close()
      backend.close()
    }
  })
})
