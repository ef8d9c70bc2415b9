import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {AuditLog, verifyLogFile} from '../../src/agent/audit-log.js'
import {runAudit} from '../../src/agent/audit.js'
import {RulesEngine} from '../../src/engines/rules-engine.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {initInventory} from '../../src/simulate/generate.js'
import {temporaryDirectory} from '../helpers/cli.js'

/*
 * For many random inventories: init → audit (apply) → detect leaves exactly the findings the
 * ground truth says must be escalated, every fixable fault is resolved with its diagnosed root
 * cause, a second audit writes nothing, and the log's hash chain verifies.
 */
describe('init → audit → detect over 20 seeds', () => {
  const seeds = Array.from({length: 20}, (_, index) => 1000 + index * 7919)

  it.each(seeds)('seed %i', async (seed) => {
    const directory = temporaryDirectory()
    const init = initInventory({
      path: join(directory, 'inv.db'),
      parts: 80 + (seed % 97),
      days: 10 + (seed % 40),
      faults: 26 + (seed % 14),
      seed,
    })
    const backend = SqliteInventory.open(init.db)
    try {
      const log = AuditLog.create(join(directory, 'logs'), `p${seed}`)
      const report = await runAudit({backend, engine: new RulesEngine(), log, dryRun: false})
      log.close()
      expect(report.summary.failed).toBe(0)

      const outcomes = new Map(report.outcomes.map((outcome) => [outcome.findingId, outcome]))
      for (const fault of init.faults) {
        const outcome = outcomes.get(`${fault.rule}:${fault.entity}`)
        expect(outcome?.outcome, `${fault.id} ${fault.rule}/${fault.rootCause}`).toBe(
          fault.expected === 'fix' ? 'resolved' : 'escalated',
        )
        expect(outcome?.rootCause, `${fault.id} ${fault.rule}/${fault.rootCause}`).toBe(fault.rootCause)
      }

      const mustEscalate = init.faults
        .filter((fault) => fault.expected === 'escalate')
        .map((fault) => `${fault.rule}:${fault.entity}`)
        .sort()
      const remaining = (await backend.detect()).map((finding) => finding.id).sort()
      expect(remaining).toEqual(mustEscalate)
      expect(verifyLogFile(log.file)).toMatchObject({ok: true})

      const secondLog = AuditLog.create(join(directory, 'logs'), `q${seed}`)
      const second = await runAudit({backend, engine: new RulesEngine(), log: secondLog, dryRun: false})
      secondLog.close()
      expect(second.outcomes.flatMap((outcome) => outcome.actions)).toEqual([])
      expect(second.summary.escalated).toBe(mustEscalate.length)
    } finally {
      backend.close()
    }
  })
})
