import {join} from 'node:path'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {AuditLog} from '../../src/agent/audit-log.js'
import {runAudit, type AuditReport} from '../../src/agent/audit.js'
import {DEFAULT_POLICY} from '../../src/agent/policy.js'
import {scopeOf, scopeSelection} from '../../src/agent/scope.js'
import {makeFinding} from '../../src/detect/finding.js'
import {RulesEngine} from '../../src/engines/rules-engine.js'
import type {InventoryBackend} from '../../src/inventory/backend.js'
import {ConfigError} from '../../src/errors.js'
import {createIndexes} from '../../src/inventory/create-indexes.js'
import {PostgresInventory} from '../../src/inventory/postgres/backend.js'
import {PostgresConnection} from '../../src/inventory/postgres/connection.js'
import {initPostgresInventory} from '../../src/inventory/postgres/init.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {initInventory, type InitOptions} from '../../src/simulate/generate.js'
import {applyWrite} from '../../src/tools/write-tools.js'
import {sha256OfFile, temporaryDirectory} from '../helpers/cli.js'
import {createTestDatabase, missingDatabaseUrl, postgresUnavailable} from '../helpers/postgres.js'

const skipReason = await postgresUnavailable()
if (skipReason) console.warn(`SKIPPING the PostgreSQL backend tests: ${skipReason}`)

/** Every fault kind at least once (the plan cycles through every rule and root cause), escalations included. */
const INVENTORY: Omit<InitOptions, 'path'> = {parts: 240, days: 20, faults: 60, seed: 13}

const TABLES = {
  parts: 'id',
  transactions: 'id',
  reservations: 'id',
  integration_events: 'id',
  sku_aliases: 'alias',
  uom_conversions: 'part_id, uom',
  invagent_meta: 'key',
} as const

/** Every row of the reference tables, ordered by key: what "the same final state" compares. */
async function pgState(url: string): Promise<Record<string, unknown[]>> {
  const client = new pg.Client({connectionString: url})
  await client.connect()
  client.setTypeParser(20, Number)
  try {
    const state: Record<string, unknown[]> = {}
    for (const [table, key] of Object.entries(TABLES)) {
      state[table] = (
        await client.query(
          `SELECT * FROM ${table} WHERE ${table === 'invagent_meta' ? "key <> 'ground_truth'" : 'true'}
           ORDER BY ${key}`,
        )
      ).rows
    }
    state.agent_actions = (
      await client.query('SELECT idempotency_key, finding_id, tool, args FROM agent_actions ORDER BY idempotency_key')
    ).rows
    return state
  } finally {
    await client.end()
  }
}

function sqliteState(backend: SqliteInventory): Record<string, unknown[]> {
  const state: Record<string, unknown[]> = {}
  for (const [table, key] of Object.entries(TABLES))
    state[table] = backend.db.all(`SELECT * FROM ${table} ORDER BY ${key}`).map((row) => ({...row}))
  state.agent_actions = backend.db
    .all<{idempotency_key: string; finding_id: string; tool: string; args: string}>(
      'SELECT idempotency_key, finding_id, tool, args FROM agent_actions ORDER BY idempotency_key',
    )
    .map((row) => ({...row, args: JSON.parse(row.args)}))
  return state
}

function outcomesOf(report: AuditReport) {
  return report.outcomes.map((outcome) =>
    JSON.parse(JSON.stringify({...outcome, latencyMs: 0, holdMs: 0, holdWorkMs: 0})),
  )
}

async function audit(backend: InventoryBackend, directory: string, dryRun: boolean): Promise<AuditReport> {
  const log = AuditLog.create(join(directory, 'logs'), 'parity')
  try {
    return await runAudit({
      backend,
      engine: new RulesEngine(),
      log,
      dryRun,
      runId: 'parity',
      policy: DEFAULT_POLICY,
      approver: async () => true,
    })
  } finally {
    log.close()
  }
}

describe.skipIf(skipReason !== undefined)('the PostgreSQL backend on a real server', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let directory: string
  let sqlitePath: string

  beforeAll(async () => {
    database = await createTestDatabase('backend')
    directory = temporaryDirectory()
    sqlitePath = initInventory({...INVENTORY, path: join(directory, 'inv.db')}).db
    await initPostgresInventory({...INVENTORY, url: database.url})
  })
  afterAll(async () => {
    await database?.drop()
  })

  it('loads exactly the rows the simulator writes to SQLite for the same seed', async () => {
    const sqlite = SqliteInventory.open(sqlitePath, {readOnly: true})
    try {
      expect(await pgState(database.url)).toEqual(sqliteState(sqlite))
    } finally {
      sqlite.close()
    }
  })

  it('finds exactly the same findings as SQLite, over the whole inventory and rule by rule', async () => {
    const sqlite = SqliteInventory.open(sqlitePath, {readOnly: true})
    const postgres = await PostgresInventory.open(database.url, {readOnly: true})
    try {
      const expected = await sqlite.detect()
      expect(expected.length).toBeGreaterThan(40)
      expect(new Set(expected.map((finding) => finding.rule)).size).toBe(8)
      expect(await postgres.detect()).toEqual(expected)
      // The same with the duplicate and reservation rules on a second connection in the same snapshot.
      const concurrent = await PostgresInventory.open(database.url, {readOnly: true, concurrentDetection: 'always'})
      try {
        expect(await concurrent.detect()).toEqual(expected)
        expect(await concurrent.detect(['reservation_drift'])).toEqual(await sqlite.detect(['reservation_drift']))
      } finally {
        await concurrent.close()
      }
      expect(await postgres.detect(['duplicate_posting', 'uom_mismatch'])).toEqual(
        await sqlite.detect(['duplicate_posting', 'uom_mismatch']),
      )
    } finally {
      sqlite.close()
      await postgres.close()
    }
  })

  it("answers the rules for a finding's scope, and the scope itself, exactly as SQLite does", async () => {
    const sqlite = SqliteInventory.open(sqlitePath, {readOnly: true})
    const postgres = await PostgresInventory.open(database.url, {readOnly: true})
    try {
      for (const finding of await sqlite.detect()) {
        const scope = await scopeOf(sqlite, finding)
        expect(await scopeOf(postgres, finding), finding.id).toEqual(scope)
        expect(await postgres.detectInScope(scope), finding.id).toEqual(await sqlite.detectInScope(scope))
        const selection = scopeSelection(scope, [finding.entity])
        expect(await postgres.readRows(selection), finding.id).toEqual(await sqlite.readRows(selection))
      }
    } finally {
      sqlite.close()
      await postgres.close()
    }
  })

  it('reads parts, transactions, balances, events and reservations as SQLite does', async () => {
    const sqlite = SqliteInventory.open(sqlitePath, {readOnly: true})
    const postgres = await PostgresInventory.open(database.url, {readOnly: true})
    try {
      for (const finding of (await sqlite.detect()).slice(0, 30)) {
        const scope = await scopeOf(sqlite, finding)
        for (const partId of scope.partIds) {
          expect(await postgres.getPart(partId)).toEqual(await sqlite.getPart(partId))
          expect(await postgres.getLedgerBalance(partId)).toEqual(await sqlite.getLedgerBalance(partId))
          expect(await postgres.listReservations(partId)).toEqual(await sqlite.listReservations(partId))
          expect(await postgres.listTransactions({partId, limit: 50})).toEqual(
            await sqlite.listTransactions({partId, limit: 50}),
          )
        }
        for (const txnId of scope.txnIds) {
          const txn = await sqlite.getTransaction(txnId)
          expect(await postgres.getTransaction(txnId)).toEqual(txn)
          for (const reservation of await sqlite.listReservations(txn.part_id ?? ''))
            expect(await postgres.getReservation(reservation.id)).toEqual(await sqlite.getReservation(reservation.id))
          expect(await postgres.getIntegrationEvents(txnId)).toEqual(await sqlite.getIntegrationEvents(txnId))
          expect(await postgres.findPartsBySku(txn.sku)).toEqual(await sqlite.findPartsBySku(txn.sku))
        }
      }
      await expect(postgres.getPart('P-999999')).rejects.toThrow('part "P-999999" does not exist')
    } finally {
      sqlite.close()
      await postgres.close()
    }
  })

  it('changes nothing in --dry-run, and gives the same outcomes as SQLite', async () => {
    const before = await pgState(database.url)
    const sqliteBefore = sha256OfFile(sqlitePath)
    const sqlite = SqliteInventory.open(sqlitePath)
    const postgres = await PostgresInventory.open(database.url)
    try {
      const onSqlite = await audit(sqlite, directory, true)
      const onPostgres = await audit(postgres, directory, true)
      expect(onPostgres.summary.wouldResolve).toBeGreaterThan(20)
      expect(outcomesOf(onPostgres)).toEqual(outcomesOf(onSqlite))
    } finally {
      sqlite.close()
      await postgres.close()
    }
    expect(await pgState(database.url)).toEqual(before)
    expect(sha256OfFile(sqlitePath)).toBe(sqliteBefore)
  })

  it("applies the rules engine's fixes: same outcomes and final state as SQLite; a rerun applies nothing", async () => {
    const sqlite = SqliteInventory.open(sqlitePath)
    const postgres = await PostgresInventory.open(database.url)
    try {
      const onSqlite = await audit(sqlite, directory, false)
      const onPostgres = await audit(postgres, directory, false)
      expect(onPostgres.summary.resolved).toBeGreaterThan(20)
      expect(onPostgres.summary.failed).toBe(0)
      expect(outcomesOf(onPostgres)).toEqual(outcomesOf(onSqlite))
      expect(await pgState(database.url)).toEqual(sqliteState(sqlite))
      // What is left is what must be escalated; a second run finds it again and changes nothing.
      const left = await postgres.detect()
      expect(left).toEqual(await sqlite.detect())
      const state = await pgState(database.url)
      const again = await audit(postgres, directory, false)
      expect(again.summary.resolved).toBe(0)
      expect(await pgState(database.url)).toEqual(state)
    } finally {
      sqlite.close()
      await postgres.close()
    }
  })
})

describe.skipIf(skipReason !== undefined)('PostgreSQL writes: idempotency keys and row locks', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>

  beforeAll(async () => {
    database = await createTestDatabase('writes')
    await initPostgresInventory({parts: 60, days: 10, faults: 10, seed: 5, url: database.url})
  })
  afterAll(async () => {
    await database?.drop()
  })

  it('applies a write once under its idempotency key, and records it in agent_actions', async () => {
    const backend = await PostgresInventory.open(database.url)
    try {
      const part = await backend.getPart('P-000001')
      const context = {runId: 'r1', findingId: 'ledger_mismatch:P-000001', idempotencyKey: 'k'.repeat(64)}
      const args = {part_id: part.id, delta: 7, reason: 'count'}
      const first = await applyWrite(backend, 'adjust_quantity', args, context)
      const second = await applyWrite(backend, 'adjust_quantity', args, context)
      expect(first).toMatchObject({applied: true, on_hand: part.on_hand + 7})
      expect(second.applied).toBe(false)
      expect(second.message).toMatch(/^already applied under idempotency key kkkkkkkkkkkk/)
      expect((await backend.getPart(part.id)).on_hand).toBe(part.on_hand + 7)
      const rows = await backend.db.query<{tool: string; args: unknown}>(
        'SELECT tool, args FROM agent_actions WHERE idempotency_key = $1',
        [context.idempotencyKey],
      )
      expect(rows).toEqual([{tool: 'adjust_quantity', args: {delta: 7, part_id: 'P-000001', reason: 'count'}}])
    } finally {
      await backend.close()
    }
  })

  it('refuses apply mode up front on a read-only server, saying what to grant; a writable one passes', async () => {
    const url = new URL(database.url)
    url.searchParams.set('options', '-c default_transaction_read_only=on')
    const readOnly = await PostgresInventory.open(url.toString())
    const writable = await PostgresInventory.open(database.url)
    try {
      const refused = await readOnly.assertWritable().then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(refused).toBeInstanceOf(ConfigError)
      expect(refused).toMatchObject({code: 'DB_NOT_WRITABLE'})
      expect((refused as ConfigError).message).toMatch(/cannot write the inventory .*read-only transaction/)
      expect((refused as ConfigError).suggestions.join(' ')).toContain('Grant this role INSERT/UPDATE')
      await expect(writable.assertWritable()).resolves.toBeUndefined()
      // The probe is rolled back: nothing of it stays.
      expect(await writable.db.query(`SELECT key FROM invagent_meta WHERE key = 'write_probe'`)).toEqual([])
    } finally {
      await readOnly.close()
      await writable.close()
    }
  })

  it('rolls back every write of a unit of work that is not committed', async () => {
    const backend = await PostgresInventory.open(database.url)
    try {
      const before = (await backend.getPart('P-000002')).on_hand
      const context = {runId: 'r2', findingId: 'f', idempotencyKey: 'u'.repeat(64)}
      await backend.unitOfWork(
        () => applyWrite(backend, 'adjust_quantity', {part_id: 'P-000002', delta: 3, reason: 'x'}, context),
        () => false,
      )
      expect((await backend.getPart('P-000002')).on_hand).toBe(before)
      expect(
        await backend.db.query('SELECT 1 FROM agent_actions WHERE idempotency_key = $1', [context.idempotencyKey]),
      ).toEqual([])
    } finally {
      await backend.close()
    }
  })

  it('locks the rows readRows reads inside a unit FOR UPDATE: another writer waits until the unit ends', async () => {
    const backend = await PostgresInventory.open(database.url)
    const other = await PostgresConnection.connect(database.url)
    try {
      const selection = {parts: ['P-000003'], ledgers: ['P-000003']}
      let otherDoneAt = 0
      let unitEndedAt = 0
      let otherWrite: Promise<unknown> | undefined
      await backend.unitOfWork(
        async () => {
          await backend.readRows(selection)
          otherWrite = other
            .query(`UPDATE parts SET location = 'moved' WHERE id = 'P-000003'`)
            .then(() => (otherDoneAt = performance.now()))
          // Long enough that the other writer would have finished, had it not been blocked.
          await new Promise((resolve) => setTimeout(resolve, 300))
          await backend.addToPartCaches('P-000003', 1, 0)
          unitEndedAt = performance.now()
        },
        () => true,
      )
      await otherWrite
      expect(otherDoneAt).toBeGreaterThanOrEqual(unitEndedAt)
      // A part outside the scope is not locked.
      const started = performance.now()
      await backend.unitOfWork(
        async () => {
          await backend.readRows(selection)
          await other.query(`UPDATE parts SET location = 'free' WHERE id = 'P-000004'`)
        },
        () => true,
      )
      // Outside a unit, readRows locks nothing.
      await backend.readRows(selection)
      await other.query(`UPDATE parts SET location = 'back' WHERE id = 'P-000003'`)
      expect(performance.now() - started).toBeLessThan(5000)
    } finally {
      await other.close()
      await backend.close()
    }
  })

  it("reads a scope's rows in a fixed order, and sees a change another session commits", async () => {
    const backend = await PostgresInventory.open(database.url)
    const other = await PostgresConnection.connect(database.url)
    try {
      const finding = makeFinding('ledger_mismatch', 'P-000006', 'medium', {})
      const scope = await scopeOf(backend, finding)
      const before = await backend.readRows(scopeSelection(scope))
      expect(before.parts.map((row) => row.id)).toEqual(['P-000006'])
      expect(before.transactions.map((row) => row.id)).toEqual([...scope.txnIds].sort())
      expect(await backend.readRows(scopeSelection(scope))).toEqual(before)
      await other.query(`UPDATE transactions SET uom = uom WHERE id = $1`, [before.transactions[0].id])
      await other.query(`UPDATE parts SET on_hand = on_hand + 1 WHERE id = 'P-000006'`)
      const after = await backend.readRows(scopeSelection(scope))
      expect(after.parts[0].on_hand).toBe((before.parts[0].on_hand as number) + 1)
      expect(after.transactions).toEqual(before.transactions)
    } finally {
      await other.close()
      await backend.close()
    }
  })

  it('reads a whole detection pass from one snapshot, even while another session commits', async () => {
    const backend = await PostgresInventory.open(database.url)
    const other = await PostgresConnection.connect(database.url)
    try {
      const seen = await backend.readSnapshot(async () => {
        const first = await backend.getPart('P-000005')
        await other.query(`UPDATE parts SET on_hand = on_hand + 1000 WHERE id = 'P-000005'`)
        const second = await backend.getPart('P-000005')
        return [first.on_hand, second.on_hand]
      })
      expect(seen[1]).toBe(seen[0])
      expect((await backend.getPart('P-000005')).on_hand).toBe(seen[0] + 1000)
    } finally {
      await other.close()
      await backend.close()
    }
  })

  it('refuses an inventory without its indexes; `inventory indexes` adds exactly the missing ones', async () => {
    const connection = await PostgresConnection.connect(database.url)
    try {
      await connection.exec('DROP INDEX idx_transactions_ledger; DROP INDEX idx_transactions_posted_ref')
    } finally {
      await connection.close()
    }
    await expect(PostgresInventory.open(database.url)).rejects.toMatchObject({code: 'DB_INDEXES'})
    const created = await createIndexes({kind: 'postgres', url: database.url})
    expect(created.created.sort()).toEqual(['idx_transactions_ledger', 'idx_transactions_posted_ref'])
    expect((await createIndexes({kind: 'postgres', url: database.url})).created).toEqual([])
    await (await PostgresInventory.open(database.url)).close()
  })

  it('refuses to replace an existing inventory without force', async () => {
    await expect(initPostgresInventory({parts: 10, days: 2, faults: 1, seed: 1, url: database.url})).rejects.toThrow(
      /already holds inventory tables/,
    )
  })

  it('--force never drops tables of the same names that inventory init did not create', async () => {
    const other = await createTestDatabase('foreign')
    const connection = await PostgresConnection.connect(other.url)
    try {
      await connection.exec("CREATE TABLE parts (id text PRIMARY KEY); INSERT INTO parts VALUES ('theirs')")
      const options = {parts: 10, days: 2, faults: 1, seed: 1, url: other.url, force: true}
      await expect(initPostgresInventory(options)).rejects.toThrow(/that `inventory init` did not create/)
      expect(await connection.query('SELECT id FROM parts')).toEqual([{id: 'theirs'}])
    } finally {
      await connection.close()
      await other.drop()
    }
  })

  it('checks the generation options before creating a database', async () => {
    const url = missingDatabaseUrl()
    await expect(initPostgresInventory({parts: 10, days: 2, faults: 6, seed: 1, url})).rejects.toThrow(/at most 5/)
    await expect(PostgresInventory.open(url)).rejects.toMatchObject({code: 'DB_NOT_FOUND'})
  })

  it('--force leaves alone, and is refused by, objects of other systems that depend on the inventory', async () => {
    const connection = await PostgresConnection.connect(database.url)
    try {
      await connection.exec('CREATE VIEW someone_elses_report AS SELECT id, on_hand FROM parts')
      const before = (await connection.one<{n: number}>('SELECT count(*) AS n FROM parts'))!.n
      const options = {parts: 10, days: 2, faults: 1, seed: 1, url: database.url, force: true}
      await expect(initPostgresInventory(options)).rejects.toThrow(/other objects depend on the inventory tables/)
      expect((await connection.one<{n: number}>('SELECT count(*) AS n FROM someone_elses_report'))!.n).toBe(before)
    } finally {
      await connection.exec('DROP VIEW IF EXISTS someone_elses_report')
      await connection.close()
    }
  })
})

describe.skipIf(skipReason !== undefined)('the shared reads on both SQL backends, edge rows included', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let sqlite: SqliteInventory
  let postgres: PostgresInventory

  const PART = '(id, sku, name, uom, on_hand, reserved, location, updated_at)'
  /**
   * The same rows in both: two parts whose SKUs normalize alike (inserted out of id order), and
   * conversion and alias rows of a part that does not exist.
   */
  const EDGE_ROWS = [
    `INSERT INTO parts ${PART} VALUES ('P-EDGE-B', 'ab-1', 'b', 'ea', 1, 0, '', 1)`,
    `INSERT INTO parts ${PART} VALUES ('P-EDGE-A', 'AB_1', 'a', 'ea', 2, 0, '', 1)`,
    "INSERT INTO uom_conversions (part_id, uom, factor) VALUES ('P-GHOST', 'box', 12)",
    "INSERT INTO sku_aliases (alias, part_id) VALUES ('GHOST-ALIAS', 'P-GHOST')",
  ]

  beforeAll(async () => {
    database = await createTestDatabase('reads')
    const options = {parts: 40, days: 10, faults: 12, seed: 21}
    const path = initInventory({...options, path: join(temporaryDirectory(), 'inv.db')}).db
    await initPostgresInventory({...options, url: database.url})
    sqlite = SqliteInventory.open(path)
    postgres = await PostgresInventory.open(database.url)
    for (const sql of EDGE_ROWS) {
      sqlite.db.run(sql)
      await postgres.db.query(sql)
    }
  })
  afterAll(async () => {
    sqlite?.close()
    await postgres?.close()
    await database?.drop()
  })

  it('filters transactions and reservations alike, by every status and kind', async () => {
    const statuses = ['pending', 'posted', 'error', 'void'] as const
    const kinds = ['receipt', 'issue', 'adjustment', 'transfer_in', 'transfer_out', 'return'] as const
    let seen = 0
    for (const partId of ['P-000001', 'P-000002', 'P-000003', 'P-000004']) {
      for (const status of [undefined, ...statuses]) {
        for (const kind of [undefined, ...kinds]) {
          const query = {partId, status, kind, limit: 5}
          const expected = await sqlite.listTransactions(query)
          seen += expected.total
          expect(await postgres.listTransactions(query)).toEqual(expected)
        }
      }
      for (const status of [undefined, 'active', 'released', 'fulfilled'] as const)
        expect(await postgres.listReservations(partId, status)).toEqual(await sqlite.listReservations(partId, status))
    }
    expect(seen).toBeGreaterThan(0)
    const ref = (await sqlite.listTransactions({partId: 'P-000001', limit: 1})).transactions[0]!.external_ref
    expect(await postgres.listTransactions({externalRef: ref})).toEqual(
      await sqlite.listTransactions({externalRef: ref}),
    )
    await expect(postgres.listTransactions({})).rejects.toThrow('give part_id or external_ref')
  })

  it('matches SKUs in id order, reads parts without conversions, and rows of a part that does not exist', async () => {
    const matches = await sqlite.findPartsBySku('ab.1')
    expect(matches.matches.map((match) => match.part_id)).toEqual(['P-EDGE-A', 'P-EDGE-B'])
    expect(await postgres.findPartsBySku('ab.1')).toEqual(matches)
    expect(await postgres.findPartsBySku('GHOST-ALIAS')).toEqual(await sqlite.findPartsBySku('GHOST-ALIAS'))
    const edge = await sqlite.getPart('P-EDGE-A')
    expect(edge).toMatchObject({conversions: [], aliases: []})
    expect(await postgres.getPart('P-EDGE-A')).toEqual(edge)
    const selection = {parts: ['P-EDGE-A', 'P-GHOST'], ledgers: ['P-000001', 'P-GHOST']}
    const rows = await sqlite.readRows(selection)
    expect(rows.uom_conversions).toContainEqual({part_id: 'P-GHOST', uom: 'box', factor: 12})
    expect(rows.sku_aliases).toContainEqual({alias: 'GHOST-ALIAS', part_id: 'P-GHOST'})
    expect(await postgres.readRows(selection)).toEqual(rows)
    for (const [entity, read] of [
      ['transaction', (id: string) => postgres.getTransaction(id)],
      ['reservation', (id: string) => postgres.getReservation(id)],
      ['part', (id: string) => postgres.getLedgerBalance(id)],
    ] as const)
      await expect(read('X-1')).rejects.toThrow(`${entity} "X-1" does not exist`)
  })

  it('records an action and finds it again the same way: canonical arguments, the result as written', async () => {
    const action = {
      idempotencyKey: 'e'.repeat(64),
      runId: 'run',
      findingId: 'ledger_mismatch:P-000001',
      tool: 'adjust_quantity',
      args: '{"delta":-3,"part_id":"P-000001","reason":"a count, \\"recounted\\""}',
      result: {applied: true, message: 'P-000001 on_hand 4 -> 1', on_hand: 1},
      at: 1234,
    }
    for (const backend of [sqlite, postgres]) {
      expect(await backend.findAction(action.idempotencyKey)).toBeUndefined()
      await backend.recordAction(action)
      expect(await backend.findAction(action.idempotencyKey)).toEqual(action)
    }
  })
})

describe.skipIf(skipReason !== undefined)('PostgreSQL connection errors say what to do', () => {
  it('names a missing database and how to create it', async () => {
    const url = missingDatabaseUrl()
    await expect(PostgresInventory.open(url)).rejects.toMatchObject({
      code: 'DB_NOT_FOUND',
      suggestions: [expect.stringContaining('inventory init --inventory')],
    })
  })

  it('says a server that does not listen is unreachable, without printing the password', async () => {
    const error = await PostgresInventory.open('postgres://postgres:hunter2@127.0.0.1:1/x').catch(
      (caught: unknown) => caught,
    )
    expect(error).toMatchObject({code: 'PG_UNREACHABLE'})
    expect((error as Error).message).toContain('postgres://postgres:***@127.0.0.1:1/x')
    expect((error as Error).message).not.toContain('hunter2')
  })

  it('creates the database named by `inventory init` when it does not exist yet', async () => {
    const url = missingDatabaseUrl()
    try {
      const result = await initPostgresInventory({parts: 20, days: 3, faults: 2, seed: 3, url})
      expect(result).toMatchObject({parts: 20, faults: [expect.anything(), expect.anything()]})
    } finally {
      const client = new pg.Client({connectionString: url.replace(/\/[^/]*$/, '/postgres')})
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`)
      await client.end()
    }
  })
})
