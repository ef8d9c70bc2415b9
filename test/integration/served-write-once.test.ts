import pg from 'pg'
import {afterAll, afterEach, describe, expect, it} from 'vitest'

import {ToolFailure, type WriteContext} from '../../src/inventory/backend.js'
import {ServedSqliteInventory, type ServedInventory} from '../../src/inventory/http/served-inventory.js'
import {ServedPostgresInventory} from '../../src/inventory/http/served-postgres.js'
import {initPostgresInventory} from '../../src/inventory/postgres/init.js'
import type {ToolArgs, WriteToolName} from '../../src/tools/tools.js'
import {buildInventory, removeBuiltInventories} from '../helpers/inventory-builder.js'
import {createTestDatabase, postgresUnavailable} from '../helpers/postgres.js'

/*
 * writeOnce on both served inventories (one implementation over each dialect's invagent_http_requests):
 * a key applies its write once, answers a retry with the recorded result, refuses other arguments,
 * and records nothing for a write that failed.
 */

const skipReason = await postgresUnavailable()
if (skipReason) console.warn(`SKIPPING writeOnce on PostgreSQL: ${skipReason}`)

const databases: Array<{drop: () => Promise<void>}> = []

afterEach(() => removeBuiltInventories())
afterAll(async () => {
  for (const database of databases.splice(0)) await database.drop()
})

const context = (key: string): WriteContext => ({runId: 'run-1', findingId: 'F-1', idempotencyKey: key})

const toError: ToolArgs<WriteToolName> = {
  txn_id: 'T-TEST',
  expected_status: 'pending',
  status: 'error',
  reason: 'sync failed',
} as ToolArgs<WriteToolName>
const backToPending: ToolArgs<WriteToolName> = {
  txn_id: 'T-TEST',
  expected_status: 'error',
  status: 'pending',
  reason: 'retry it',
} as ToolArgs<WriteToolName>

async function statusOf(served: ServedInventory): Promise<string> {
  return (await served.backend.getTransaction('T-TEST')).status
}

async function checkWriteOnce(served: ServedInventory, recorded: () => Promise<number>): Promise<void> {
  const applied = await served.writeOnce('set_transaction_status', toError, context('key-1'))
  expect(applied).toMatchObject({kind: 'applied'})
  expect(await statusOf(served)).toBe('error')

  const replayed = await served.writeOnce('set_transaction_status', toError, context('key-1'))
  expect(replayed).toEqual({kind: 'replayed', result: (applied as {result: unknown}).result})
  expect(await statusOf(served)).toBe('error')

  expect(await served.writeOnce('set_transaction_status', backToPending, context('key-1'))).toEqual({
    kind: 'conflict',
    recordedTool: 'set_transaction_status',
  })
  expect(await recorded()).toBe(1)

  // Fails (the status is no longer pending): nothing is recorded, so the key is still free.
  await expect(served.writeOnce('set_transaction_status', toError, context('key-2'))).rejects.toBeInstanceOf(
    ToolFailure,
  )
  expect(await recorded()).toBe(1)
  expect(await served.writeOnce('set_transaction_status', backToPending, context('key-2'))).toMatchObject({
    kind: 'applied',
  })
  expect(await statusOf(served)).toBe('pending')
  expect(await recorded()).toBe(2)
}

describe('writeOnce', () => {
  it('on SQLite: applies once, replays, refuses other arguments, records no failure', async () => {
    const path = buildInventory()
      .part({id: 'P-1', sku: 'A-1'})
      .transaction({id: 'T-TEST', part_id: 'P-1', qty: 3, status: 'pending'})
      .open().location
    const served = ServedSqliteInventory.open(path)
    try {
      await checkWriteOnce(served, async () => served.backend.db.get<{n: number}>(COUNT_SQL)!.n)
    } finally {
      served.close()
    }
  })

  it.skipIf(skipReason)(
    'on PostgreSQL: applies once, replays, refuses other arguments, records no failure',
    async () => {
      const database = await createTestDatabase('write_once')
      databases.push(database)
      await initPostgresInventory({parts: 20, days: 2, faults: 0, seed: 3, url: database.url})
      const client = new pg.Client({connectionString: database.url})
      await client.connect()
      try {
        await client.query(
          `INSERT INTO transactions (id, part_id, sku, kind, qty, uom, status, source, external_ref, created_at)
           SELECT 'T-TEST', id, sku, 'receipt', 3, uom, 'pending', 'wms', 'R-TEST', 1 FROM parts ORDER BY id LIMIT 1`,
        )
        const served = await ServedPostgresInventory.open(database.url)
        try {
          await checkWriteOnce(served, async () => (await client.query<{n: number}>(COUNT_SQL)).rows[0]!.n)
        } finally {
          await served.close()
        }
      } finally {
        await client.end()
      }
    },
  )
})

const COUNT_SQL = 'SELECT CAST(count(*) AS integer) AS n FROM invagent_http_requests'
