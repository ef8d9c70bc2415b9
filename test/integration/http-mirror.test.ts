import {join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {afterAll, afterEach, describe, expect, it} from 'vitest'

import {AuditLog} from '../../src/agent/audit-log.js'
import {runAudit, type FindingOutcome} from '../../src/agent/audit.js'
import {RulesEngine} from '../../src/engines/rules-engine.js'
import type {HttpInventory} from '../../src/inventory/http/http-backend.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {
  connect,
  generatedInventory,
  removeTemporaryInventories,
  startServer,
  type RunningServer,
} from '../helpers/inventory-server.js'
import {countRows, dumpInventory} from '../helpers/table-dump.js'

/*
 * The HTTP backend against the reference server on a loopback socket, over generated inventories:
 * detection on the mirror agrees with detection on the file underneath, re-syncs read only what
 * changed, and an audit over HTTP ends where the same audit on the file ends.
 */

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(() => removeTemporaryInventories())

async function served(
  params?: {parts: number; faults: number; seed: number},
  pageRows?: number,
): Promise<{dir: string; path: string; server: RunningServer; http: HttpInventory}> {
  const {dir, path} = generatedInventory(params)
  const server = await startServer(path)
  cleanups.push(() => server.stop())
  const http = await connect(server, dir, {pageRows})
  cleanups.push(() => http.close())
  return {dir, path, server, http}
}

async function detectOnFile(path: string) {
  const direct = SqliteInventory.open(path, {readOnly: true})
  try {
    return await direct.detect()
  } finally {
    direct.close()
  }
}

function comparable(outcomes: FindingOutcome[]) {
  return outcomes.map(({findingId, outcome, rootCause, actions, summary}) => ({
    findingId,
    outcome,
    rootCause,
    actions,
    summary,
  }))
}

describe('HTTP backend: detection over the mirror', () => {
  it('finds exactly what detection on the SQLite file underneath finds', async () => {
    // Pages of 97 rows: every table takes several, and the cursor is used for all of them.
    const {path, http} = await served({parts: 400, faults: 60, seed: 7}, 97)
    const expected = await detectOnFile(path)
    expect(expected.length).toBeGreaterThan(40)
    expect(await http.detect()).toEqual(expected)
    expect(http.lastSync?.full).toBe(true)
    expect(http.lastSync?.rows.transactions).toBe(countRows(path, 'SELECT count(*) AS n FROM transactions'))
    expect(dumpInventory(http.mirror.path, {actions: true})).toEqual(dumpInventory(path, {actions: true}))
  })

  it('re-syncs only what changed: updated rows, new rows and deletions', async () => {
    const {path, http} = await served()
    await http.detect()
    const idle = await http.sync()
    expect(idle).toMatchObject({
      full: false,
      requests: 1,
      deleted: 0,
      rows: {parts: 0, transactions: 0, reservations: 0, sku_aliases: 0, uom_conversions: 0, agent_actions: 0},
    })

    // Another system writes to the inventory directly: the triggers see it as they see invagent's writes.
    const db = new DatabaseSync(path)
    db.exec(`UPDATE parts SET on_hand = on_hand + 5 WHERE id = 'P-000010'`)
    db.exec(
      `UPDATE transactions SET status = 'error' WHERE id = (SELECT min(id) FROM transactions WHERE status = 'pending')`,
    )
    db.exec(`INSERT INTO sku_aliases (alias, part_id) VALUES ('NEW-ALIAS-1', 'P-000011')`)
    db.exec(`DELETE FROM sku_aliases WHERE alias = (SELECT min(alias) FROM sku_aliases WHERE alias <> 'NEW-ALIAS-1')`)
    db.close()

    const findings = await http.detect()
    expect(http.lastSync).toMatchObject({
      full: false,
      deleted: 1,
      rows: {parts: 1, transactions: 1, reservations: 0, sku_aliases: 1, uom_conversions: 0, agent_actions: 0},
    })
    // info, one request per table, one for deletions.
    expect(http.lastSync?.requests).toBe(8)
    expect(dumpInventory(http.mirror.path, {actions: true})).toEqual(dumpInventory(path, {actions: true}))
    expect(findings).toEqual(await detectOnFile(path))
    expect(findings.some((finding) => finding.id === 'ledger_mismatch:P-000010')).toBe(true)
  })

  it('loses no change made while it pages through a table', async () => {
    const {path, http, server} = await served(undefined, 100)
    let page = 0
    server.faults = (request) => {
      if (request.path !== '/v1/sync/transactions' || ++page !== 3) return undefined
      // Between pages 2 and 3: change a row already sent, and one not sent yet.
      const db = new DatabaseSync(path)
      db.exec(
        `UPDATE transactions SET status = 'void' WHERE id = (SELECT min(id) FROM transactions WHERE status = 'posted')`,
      )
      db.exec(`UPDATE transactions SET qty = qty + 1 WHERE id = (SELECT max(id) FROM transactions)`)
      db.close()
      return undefined
    }
    await http.sync()
    server.faults = undefined
    const second = await http.sync()
    expect(second.full).toBe(false)
    expect(second.rows.transactions).toBeGreaterThanOrEqual(1)
    expect(second.rows.transactions).toBeLessThanOrEqual(2)
    expect(dumpInventory(http.mirror.path, {actions: true})).toEqual(dumpInventory(path, {actions: true}))
  })

  it('starts over when the inventory behind the URL is replaced', async () => {
    const {dir, http, server} = await served()
    await http.detect()
    const other = generatedInventory({parts: 50, faults: 5, seed: 3})
    await server.crash()
    const replacement = await startServer(other.path, {port: server.port})
    cleanups.push(() => replacement.stop())
    const findings = await http.detect()
    expect(http.lastSync?.full).toBe(true)
    expect(findings).toEqual(await detectOnFile(other.path))
    expect(dumpInventory(join(dir, 'mirror', 'mirror.db'))).toEqual(dumpInventory(other.path))
  })
})

describe('HTTP backend: audits', () => {
  const sameOverHttp =
    'an audit (rules engine, apply) over HTTP ends in the same outcomes and the same state as on the file'
  it(sameOverHttp, async () => {
    const {dir, path, http, server} = await served()
    const reference = generatedInventory()
    const direct = SqliteInventory.open(reference.path)
    cleanups.push(() => direct.close())
    const expected = await runAudit({
      backend: direct,
      engine: new RulesEngine(),
      log: AuditLog.create(join(reference.dir, 'logs'), 'direct'),
      dryRun: false,
      runId: 'run-1',
    })
    const actual = await runAudit({
      backend: http,
      engine: new RulesEngine(),
      log: AuditLog.create(join(dir, 'logs'), 'http'),
      dryRun: false,
      runId: 'run-1',
    })
    expect(actual.summary).toEqual(expected.summary)
    expect(actual.summary.resolved).toBeGreaterThan(10)
    expect(comparable(actual.outcomes)).toEqual(comparable(expected.outcomes))
    expect(dumpInventory(path)).toEqual(dumpInventory(reference.path))
    // Each applied write went over HTTP exactly once, and is in the inventory's action log once.
    const applied = actual.outcomes.flatMap((outcome) => outcome.actions.filter((action) => action.applied))
    expect(server.writes.filter((entry) => entry.outcome === 'applied')).toHaveLength(applied.length)
    expect(countRows(path, 'SELECT count(*) AS n FROM agent_actions')).toBe(applied.length)
    expect(await http.detect()).toEqual(await detectOnFile(path))
  })

  it('a dry-run audit over HTTP sends no write and changes nothing', async () => {
    const {dir, path, http, server} = await served()
    const before = dumpInventory(path)
    const report = await runAudit({
      backend: http,
      engine: new RulesEngine(),
      log: AuditLog.create(join(dir, 'logs'), 'dry'),
      dryRun: true,
    })
    expect(report.summary.wouldResolve).toBeGreaterThan(10)
    expect(server.writes).toEqual([])
    expect(dumpInventory(path)).toEqual(before)
    expect(countRows(path, 'SELECT count(*) AS n FROM agent_actions')).toBe(0)
  })
})
