import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {applyWrite} from '../../src/tools/write-tools.js'
import {UserError} from '../../src/errors.js'
import {
  currentWatermark,
  decodeCursor,
  encodeCursor,
  prepareChangeTracking,
  readDeletions,
  readSyncPage,
  syncTable,
} from '../../src/inventory/http/change-tracking.js'
import {parseRetryAfter} from '../../src/inventory/http/http-client.js'
import {defaultMirrorPath} from '../../src/inventory/http/mirror.js'
import {resolveToken} from '../../src/inventory/http/token.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {buildInventory, removeBuiltInventories} from '../helpers/inventory-builder.js'

afterEach(() => removeBuiltInventories())

function tracked(): SqliteInventory {
  const inventory = buildInventory()
    .part({id: 'P-1', sku: 'A-1', on_hand: 5})
    .part({id: 'P-2', sku: 'A-2'})
    .transaction({id: 'T-1', part_id: 'P-1', qty: 5})
    .alias('A1', 'P-1')
    .conversion('P-1', 'CS', 12)
    .open()
  prepareChangeTracking(inventory.db)
  return inventory
}

const versionOf = (inventory: SqliteInventory, table: string, where: string) =>
  inventory.db.get<{v: number}>(`SELECT row_version AS v FROM ${table} WHERE ${where}`)!.v

describe('change tracking on the reference schema', () => {
  it('gives rows that predate it version 0 and starts the watermark at 1, so a full read sees them all', () => {
    const inventory = tracked()
    expect(currentWatermark(inventory.db)).toBe(1)
    expect(versionOf(inventory, 'parts', `id = 'P-1'`)).toBe(0)
    expect(
      readSyncPage(inventory.db, syncTable('parts'), {updatedSince: 0, limit: 10}).rows.map((row) => row.id),
    ).toEqual(['P-1', 'P-2'])
    expect(readSyncPage(inventory.db, syncTable('parts'), {updatedSince: 1, limit: 10}).rows).toEqual([])
  })

  it('stamps inserts and updates from one sequence, whoever writes, and leaves tombstones of deletions', () => {
    const inventory = tracked()
    inventory.db.exec(`UPDATE parts SET on_hand = 7 WHERE id = 'P-2'`)
    inventory.db.exec(`INSERT INTO uom_conversions (part_id, uom, factor) VALUES ('P-2', 'BOX', 10)`)
    inventory.db.exec(`DELETE FROM uom_conversions WHERE part_id = 'P-1' AND uom = 'CS'`)
    expect(versionOf(inventory, 'parts', `id = 'P-2'`)).toBe(2)
    expect(versionOf(inventory, 'uom_conversions', `part_id = 'P-2' AND uom = 'BOX'`)).toBe(3)
    expect(currentWatermark(inventory.db)).toBe(4)
    expect(readSyncPage(inventory.db, syncTable('parts'), {updatedSince: 1, limit: 10}).rows).toEqual([
      {
        id: 'P-2',
        sku: 'A-2',
        name: expect.any(String),
        uom: 'EA',
        on_hand: 7,
        reserved: 0,
        location: expect.any(String),
        updated_at: expect.any(Number),
      },
    ])
    expect(readDeletions(inventory.db, 3, 10).rows).toEqual([
      {table: 'uom_conversions', key: ['P-1', 'CS'], version: 4},
    ])
    expect(readDeletions(inventory.db, 4, 10).rows).toEqual([])
  })

  const backwardCompatible =
    'is backward compatible: added columns have defaults, a second preparation changes nothing, ' +
    'the backend still opens it'
  it(backwardCompatible, async () => {
    const inventory = tracked()
    expect(prepareChangeTracking(inventory.db)).toEqual({changed: false})
    inventory.db.exec(`INSERT INTO parts (id, sku, name, uom, updated_at) VALUES ('P-3', 'A-3', 'three', 'EA', 0)`)
    inventory.db.exec(`UPDATE parts SET on_hand = 3 WHERE id = 'P-2'`)
    const reopened = SqliteInventory.open(inventory.location)
    expect((await reopened.getPart('P-3')).sku).toBe('A-3')
    const write = await applyWrite(
      reopened,
      'recompute_on_hand',
      {part_id: 'P-2', reason: 'x'},
      {runId: 'r', findingId: 'f', idempotencyKey: 'key-unit-1'},
    )
    expect(write.applied).toBe(true)
    expect(versionOf(reopened, 'agent_actions', `idempotency_key = 'key-unit-1'`)).toBeGreaterThan(1)
    reopened.close()
  })

  it('pages by (row_version, key) with a cursor that round-trips and rejects anything else', () => {
    const inventory = tracked()
    const spec = syncTable('parts')
    const first = readSyncPage(inventory.db, spec, {updatedSince: 0, limit: 1})
    expect(first.rows.map((row) => row.id)).toEqual(['P-1'])
    const cursor = decodeCursor(encodeCursor(first.nextCursor!), spec)
    expect(cursor).toEqual({version: 0, key: ['P-1']})
    const second = readSyncPage(inventory.db, spec, {updatedSince: 0, limit: 1, cursor})
    expect(second.rows.map((row) => row.id)).toEqual(['P-2'])
    expect(decodeCursor('garbage', spec)).toBeUndefined()
    expect(decodeCursor(encodeCursor({version: 1, key: ['a', 'b']}), spec)).toBeUndefined()
  })
})

describe('HTTP client helpers', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0)
    expect(parseRetryAfter('3', now)).toBe(3000)
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000)
    expect(parseRetryAfter(new Date(now - 5000).toUTCString(), now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(null, now)).toBeUndefined()
  })

  it('takes the token from --token-file before INVAGENT_TOKEN, and refuses an empty file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'invagent-token-'))
    const file = join(dir, 'token')
    writeFileSync(file, '  file-token\n')
    expect(resolveToken(file, {INVAGENT_TOKEN: 'env-token'})).toBe('file-token')
    expect(resolveToken(undefined, {INVAGENT_TOKEN: 'env-token'})).toBe('env-token')
    expect(resolveToken(undefined, {})).toBeUndefined()
    writeFileSync(file, '\n')
    expect(() => resolveToken(file, {})).toThrow(UserError)
    expect(() => resolveToken(join(dir, 'missing'), {})).toThrow(/cannot read the token file/)
  })

  it('keeps one mirror per inventory URL', () => {
    const a = defaultMirrorPath('http://127.0.0.1:8765')
    expect(a).toMatch(/^\.invagent\/mirrors\/127\.0\.0\.1-8765-[0-9a-f]{10}\.db$/)
    expect(defaultMirrorPath('https://erp.example.com/api')).toMatch(/erp\.example\.com-https-/)
    expect(defaultMirrorPath('http://127.0.0.1:8766')).not.toBe(a)
  })
})
