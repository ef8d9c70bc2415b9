import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {describe, expect, it} from 'vitest'

import {AuditLog, verifyLogFile} from '../../src/agent/audit-log.js'
import {runAudit} from '../../src/agent/audit.js'
import {DEFAULT_POLICY} from '../../src/agent/policy.js'
import {RandomEngine} from '../../src/engines/random-engine.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {initInventory} from '../../src/simulate/generate.js'
import {temporaryDirectory} from '../helpers/cli.js'

type Row = Record<string, unknown>

function snapshot(path: string): Map<string, string> {
  const db = new DatabaseSync(path, {readOnly: true})
  const rows = new Map<string, string>()
  for (const table of ['parts', 'transactions', 'reservations']) {
    for (const row of db.prepare(`SELECT * FROM ${table}`).all() as Row[])
      rows.set(`${table}:${String(row.id)}`, JSON.stringify(row))
  }
  db.close()
  return rows
}

/**
 * What a finding may change, computed here independently of the policy gate from the state
 * before the audit: its part (with that part's transactions and reservations), or its
 * transaction, the transaction's part, its duplicates, and parts its SKU could resolve to.
 */
function allowedRows(path: string, findings: Array<{rule: string; entity: string}>): Set<string> {
  const db = new DatabaseSync(path, {readOnly: true})
  const allowed = new Set<string>()
  const addPart = (partId: string) => {
    allowed.add(`parts:${partId}`)
    for (const row of db.prepare('SELECT id FROM transactions WHERE part_id = ?').all(partId) as Row[])
      allowed.add(`transactions:${String(row.id)}`)
    for (const row of db.prepare('SELECT id FROM reservations WHERE part_id = ?').all(partId) as Row[])
      allowed.add(`reservations:${String(row.id)}`)
  }
  for (const finding of findings) {
    if (finding.entity.startsWith('P-')) {
      addPart(finding.entity)
      continue
    }
    const txn = db
      .prepare('SELECT part_id, sku, source, external_ref FROM transactions WHERE id = ?')
      .get(finding.entity) as Row
    allowed.add(`transactions:${finding.entity}`)
    if (txn.part_id) allowed.add(`parts:${String(txn.part_id)}`)
    for (const row of db
      .prepare('SELECT id FROM transactions WHERE source = ? AND external_ref = ?')
      .all(txn.source as string, txn.external_ref as string) as Row[])
      allowed.add(`transactions:${String(row.id)}`)
    for (const row of db
      .prepare('SELECT id FROM parts WHERE sku = ? UNION SELECT part_id FROM sku_aliases WHERE alias = ?')
      .all(txn.sku as string, txn.sku as string) as Row[])
      allowed.add(`parts:${String(row.id)}`)
  }
  db.close()
  return allowed
}

describe('chaos: a random engine against the audit loop', () => {
  it('makes over 10,000 random steps without one write outside scope or one broken invariant', async () => {
    let steps = 0
    let invalid = 0
    let writesCommitted = 0
    let writesExecuted = 0
    let writesDenied = 0
    for (let seed = 1; steps < 10_000 && seed <= 60; seed++) {
      const directory = temporaryDirectory()
      const init = initInventory({path: join(directory, 'inv.db'), parts: 120, days: 15, faults: 40, seed})
      const before = snapshot(init.db)
      const backend = SqliteInventory.open(init.db)
      const pool = {
        partIds: backend.db.all<{id: string}>('SELECT id FROM parts').map((row) => row.id),
        txnIds: backend.db.all<{id: string}>('SELECT id FROM transactions').map((row) => row.id),
        reservationIds: backend.db.all<{id: string}>('SELECT id FROM reservations').map((row) => row.id),
        skus: backend.db.all<{sku: string}>('SELECT sku FROM transactions LIMIT 200').map((row) => row.sku),
        uoms: ['EA', 'CS', 'BX', 'L', 'M', 'KG'],
      }
      const detectedBefore = new Set((await backend.detect()).map((finding) => finding.id))
      const log = AuditLog.create(join(directory, 'logs'), `chaos${seed}`)
      const report = await runAudit({
        backend,
        engine: new RandomEngine(seed, pool),
        log,
        dryRun: false,
        policy: {...DEFAULT_POLICY, profile: 'full'},
        approver: async () => seed % 2 === 0,
      })
      log.close()
      const detectedAfter = await backend.detect()
      backend.close()

      steps += report.outcomes.reduce((sum, outcome) => sum + outcome.steps, 0)
      invalid += report.outcomes.reduce((sum, outcome) => sum + outcome.invalidSteps, 0)
      writesCommitted += report.outcomes.flatMap((outcome) => outcome.actions).filter((action) => action.applied).length
      for (const line of readFileSync(log.file, 'utf8')
        .trimEnd()
        .split('\n')
        .map((text) => JSON.parse(text))) {
        if (line.event !== 'policy-decided') continue
        if (line.data.decision.allowed) writesExecuted++
        else writesDenied++
      }

      for (const outcome of report.outcomes) expect(['resolved', 'escalated']).toContain(outcome.outcome)
      // No invariant broken: every finding after the audit already existed before it.
      for (const finding of detectedAfter)
        expect(detectedBefore.has(finding.id), `new finding ${finding.id} (seed ${seed})`).toBe(true)
      // No write outside scope: every changed row belongs to a finding that was resolved.
      const resolved = report.outcomes.filter((outcome) => outcome.outcome === 'resolved')
      const allowed = allowedRows(init.db, resolved)
      const after = snapshot(init.db)
      for (const [key, row] of after) {
        if (before.get(key) !== row && !key.startsWith('transactions:T-ADJ-'))
          expect(allowed.has(key), `${key} changed outside scope (seed ${seed})`).toBe(true)
        if (key.startsWith('transactions:T-ADJ-'))
          expect(allowed.has(`parts:${JSON.parse(row).part_id}`), `${key} (seed ${seed})`).toBe(true)
      }
      for (const key of before.keys()) expect(after.has(key), `${key} deleted (seed ${seed})`).toBe(true)
      expect(verifyLogFile(log.file).ok).toBe(true)
    }
    expect(steps).toBeGreaterThanOrEqual(10_000)
    expect(invalid).toBeGreaterThan(500)
    // The gate was exercised both ways: writes ran inside findings' units of work, and many were refused.
    expect(writesExecuted).toBeGreaterThan(100)
    expect(writesDenied).toBeGreaterThan(100)
    expect(writesCommitted).toBeLessThanOrEqual(writesExecuted)
  })
})
