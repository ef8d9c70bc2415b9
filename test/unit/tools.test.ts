import {afterEach, describe, expect, it} from 'vitest'

import {ToolFailure, type WriteContext} from '../../src/inventory/backend.js'
import type {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {getTool, TOOLS, type ReadToolName, type ToolArgs, type WriteToolName} from '../../src/tools/tools.js'
import {applyWrite, previewWrite} from '../../src/tools/write-tools.js'
import {
  buildInventory,
  caches,
  HOUR_MS,
  MINUTE_MS,
  NOW,
  removeBuiltInventories,
  row,
} from '../helpers/inventory-builder.js'

afterEach(removeBuiltInventories)

/*
 * P-000001 BLT-10001 (EA, 1 CS = 12 EA, alias LEG-BLT10001): received 10 EA, issued 3 EA on
 * SO-2026-0000001/1, so on_hand 7; reservations: R-000001 (3, the shipped order: stale),
 * R-000002 (2, active), R-000003 (4, released), so reserved 5.
 * P-000002 NUT-20001 (EA): received 20 EA, on_hand 20.
 * T-0000003: a pending receipt of 2 CS for P-000001 (+24 when posted), 3 h old.
 * T-0000004: an error receipt with no part, SKU LEG-BLT10001 (an alias of P-000001).
 * T-0000005: a posted receipt of 1 CS for P-000001 that was counted as 1 EA (+12 in the ledger).
 * T-0000006: a pending receipt in BX, a unit P-000001 has no conversion for.
 * T-0000007: a posted receipt of 4 EA pointing at P-999999, which does not exist.
 */
function standardInventory(): SqliteInventory {
  return buildInventory()
    .part({
      id: 'P-000001',
      sku: 'BLT-10001',
      name: 'Hex bolt M8x40',
      uom: 'EA',
      on_hand: 19,
      reserved: 5,
      location: 'WH1-B04-2',
    })
    .conversion('P-000001', 'CS', 12)
    .alias('LEG-BLT10001', 'P-000001')
    .part({id: 'P-000002', sku: 'NUT-20001', name: 'Hex nut M8', uom: 'EA', on_hand: 20})
    .transaction({
      id: 'T-0000001',
      part_id: 'P-000001',
      kind: 'receipt',
      qty: 10,
      external_ref: 'ASN-2026-0000001/1',
      created_at: NOW - 72 * HOUR_MS,
    })
    .transaction({
      id: 'T-0000002',
      part_id: 'P-000001',
      kind: 'issue',
      qty: -3,
      source: 'ecommerce',
      external_ref: 'SO-2026-0000001/1',
      created_at: NOW - 48 * HOUR_MS,
    })
    .transaction({
      id: 'T-0000003',
      part_id: 'P-000001',
      kind: 'receipt',
      qty: 2,
      uom: 'CS',
      status: 'pending',
      external_ref: 'ASN-2026-0000002/1',
      created_at: NOW - 3 * HOUR_MS,
    })
    .transaction({
      id: 'T-0000004',
      part_id: null,
      sku: 'LEG-BLT10001',
      kind: 'receipt',
      qty: 5,
      status: 'error',
      external_ref: 'ASN-2026-0000003/1',
      created_at: NOW - 5 * HOUR_MS,
    })
    .transaction({
      id: 'T-0000005',
      part_id: 'P-000001',
      kind: 'receipt',
      qty: 1,
      uom: 'CS',
      external_ref: 'ASN-2026-0000004/1',
      created_at: NOW - 30 * HOUR_MS,
    })
    .transaction({
      id: 'T-0000006',
      part_id: 'P-000001',
      kind: 'receipt',
      qty: 1,
      uom: 'BX',
      status: 'pending',
      external_ref: 'ASN-2026-0000005/1',
      created_at: NOW - 4 * HOUR_MS,
    })
    .transaction({
      id: 'T-0000007',
      part_id: 'P-999999',
      sku: 'LEG-BLT10001',
      kind: 'receipt',
      qty: 4,
      external_ref: 'ASN-2026-0000006/1',
      created_at: NOW - 6 * HOUR_MS,
    })
    .transaction({
      id: 'T-0000008',
      part_id: 'P-000002',
      kind: 'receipt',
      qty: 20,
      external_ref: 'ASN-2026-0000007/1',
      created_at: NOW - 70 * HOUR_MS,
    })
    .reservation({
      id: 'R-000001',
      part_id: 'P-000001',
      qty: 3,
      order_ref: 'SO-2026-0000001/1',
      created_at: NOW - 50 * HOUR_MS,
    })
    .reservation({
      id: 'R-000002',
      part_id: 'P-000001',
      qty: 2,
      order_ref: 'SO-2026-0000009/1',
      created_at: NOW - 2 * HOUR_MS,
    })
    .reservation({
      id: 'R-000003',
      part_id: 'P-000001',
      qty: 4,
      order_ref: 'SO-2026-0000010/1',
      status: 'released',
      created_at: NOW - 90 * HOUR_MS,
    })
    .event({
      txn_id: 'T-0000004',
      at: NOW - 5 * HOUR_MS + MINUTE_MS,
      level: 'error',
      message: "SKU 'LEG-BLT10001' not found in item master",
    })
    .event({txn_id: 'T-0000004', at: NOW - 5 * HOUR_MS, level: 'info', message: 'received ASN-2026-0000003/1 from wms'})
    .open()
}

let keyCounter = 0
function context(key = `key-${++keyCounter}`): WriteContext {
  return {runId: 'run-test', findingId: 'test:finding', idempotencyKey: key}
}

function status(inventory: SqliteInventory, txnId: string): string | undefined {
  return row<{status: string}>(inventory, 'SELECT status FROM transactions WHERE id = ?', txnId)?.status
}

function actionCount(inventory: SqliteInventory): number {
  return row<{n: number}>(inventory, 'SELECT count(*) AS n FROM agent_actions')!.n
}

async function write<N extends WriteToolName>(
  inventory: SqliteInventory,
  tool: N,
  args: ToolArgs<N>,
  writeContext = context(),
) {
  return applyWrite(inventory, tool, args as ToolArgs<WriteToolName>, writeContext)
}

describe('read tools', () => {
  const reads: Array<[ReadToolName, (inventory: SqliteInventory) => Promise<unknown>]> = [
    ['get_part', (inventory) => inventory.getPart('P-000001')],
    ['find_part_by_sku', (inventory) => inventory.findPartsBySku('LEG-BLT10001')],
    ['list_transactions', (inventory) => inventory.listTransactions({partId: 'P-000001'})],
    ['get_transaction', (inventory) => inventory.getTransaction('T-0000004')],
    ['get_ledger_balance', (inventory) => inventory.getLedgerBalance('P-000001')],
    ['get_integration_events', async (inventory) => ({events: await inventory.getIntegrationEvents('T-0000004')})],
    ['list_reservations', async (inventory) => ({reservations: await inventory.listReservations('P-000001')})],
  ]

  it('covers every read tool', () => {
    expect(reads.map(([name]) => name).sort()).toEqual(
      TOOLS.filter((tool) => tool.effect === 'read')
        .map((tool) => tool.name)
        .sort(),
    )
  })

  it.each(reads)('%s returns what its result schema describes', async (name, read) => {
    const result = await read(standardInventory())
    expect(getTool(name)!.result.parse(result)).toEqual(result)
  })

  it('get_part reads caches, conversions and aliases', async () => {
    expect(await standardInventory().getPart('P-000001')).toEqual({
      id: 'P-000001',
      sku: 'BLT-10001',
      name: 'Hex bolt M8x40',
      uom: 'EA',
      on_hand: 19,
      reserved: 5,
      location: 'WH1-B04-2',
      updated_at: NOW - 24 * HOUR_MS,
      conversions: [{uom: 'CS', factor: 12}],
      aliases: ['LEG-BLT10001'],
    })
  })

  it('find_part_by_sku matches exact, alias and normalized spellings', async () => {
    const inventory = standardInventory()
    expect(await inventory.findPartsBySku('BLT-10001')).toEqual({
      matches: [{part_id: 'P-000001', sku: 'BLT-10001', match: 'exact'}],
    })
    expect(await inventory.findPartsBySku('LEG-BLT10001')).toEqual({
      matches: [{part_id: 'P-000001', sku: 'BLT-10001', match: 'alias'}],
    })
    expect(await inventory.findPartsBySku('blt 10001')).toEqual({
      matches: [{part_id: 'P-000001', sku: 'BLT-10001', match: 'normalized'}],
    })
    expect(await inventory.findPartsBySku('ZZZ-1')).toEqual({matches: []})
  })

  it('list_transactions lists newest first, filters by status and kind, limits, and counts the total', async () => {
    const inventory = standardInventory()
    const all = await inventory.listTransactions({partId: 'P-000001'})
    expect(all.total).toBe(5)
    expect(all.transactions.map((txn) => txn.id)).toEqual([
      'T-0000003',
      'T-0000006',
      'T-0000005',
      'T-0000002',
      'T-0000001',
    ])
    const posted = await inventory.listTransactions({partId: 'P-000001', status: 'posted', limit: 2})
    expect(posted.total).toBe(3)
    expect(posted.transactions.map((txn) => txn.id)).toEqual(['T-0000005', 'T-0000002'])
    const postedIssues = await inventory.listTransactions({partId: 'P-000001', status: 'posted', kind: 'issue'})
    expect(postedIssues).toMatchObject({total: 1, transactions: [{id: 'T-0000002', kind: 'issue', status: 'posted'}]})
    const pendingReceipts = await inventory.listTransactions({partId: 'P-000001', status: 'pending', kind: 'receipt'})
    expect(pendingReceipts.transactions.map((txn) => txn.id)).toEqual(['T-0000003', 'T-0000006'])
    const byRef = await inventory.listTransactions({externalRef: 'SO-2026-0000001/1'})
    expect(byRef.transactions.map((txn) => txn.id)).toEqual(['T-0000002'])
    await expect(inventory.listTransactions({})).rejects.toThrow(ToolFailure)
  })

  it('get_transaction computes the stock delta, or null when it cannot', async () => {
    const inventory = standardInventory()
    expect((await inventory.getTransaction('T-0000003')).stock_delta).toBe(24)
    expect((await inventory.getTransaction('T-0000002')).stock_delta).toBe(-3)
    expect((await inventory.getTransaction('T-0000004')).stock_delta).toBeNull()
    expect((await inventory.getTransaction('T-0000006')).stock_delta).toBeNull()
    expect((await inventory.getTransaction('T-0000007')).stock_delta).toBeNull()
    await expect(inventory.getTransaction('T-9999999')).rejects.toThrow('transaction "T-9999999" does not exist')
  })

  it('get_ledger_balance compares both caches with the truth', async () => {
    expect(await standardInventory().getLedgerBalance('P-000001')).toEqual({
      part_id: 'P-000001',
      uom: 'EA',
      on_hand: 19,
      ledger_balance: 19,
      posted_count: 3,
      unconvertible_count: 0,
      largest_posting: 12,
      reserved: 5,
      active_reserved: 5,
    })
  })

  it('get_integration_events reads events oldest first', async () => {
    const events = await standardInventory().getIntegrationEvents('T-0000004')
    expect(events.map((event) => [event.level, event.at])).toEqual([
      ['info', NOW - 5 * HOUR_MS],
      ['error', NOW - 5 * HOUR_MS + MINUTE_MS],
    ])
  })

  it('list_reservations reports the quantity shipped against each order line', async () => {
    const reservations = await standardInventory().listReservations('P-000001')
    expect(reservations.map((reservation) => [reservation.id, reservation.status, reservation.shipped_qty])).toEqual([
      ['R-000003', 'released', 0],
      ['R-000001', 'active', 3],
      ['R-000002', 'active', 0],
    ])
    expect(
      (await standardInventory().listReservations('P-000001', 'active')).map((reservation) => reservation.id),
    ).toEqual(['R-000001', 'R-000002'])
  })

  it('a read of a missing part fails as a ToolFailure', async () => {
    await expect(standardInventory().getPart('P-404404')).rejects.toThrow(
      new ToolFailure('part "P-404404" does not exist'),
    )
  })
})

describe('write tools', () => {
  describe('reprocess_transaction', () => {
    it('posts a pending transaction and adds its stock delta', async () => {
      const inventory = standardInventory()
      const result = await write(inventory, 'reprocess_transaction', {txn_id: 'T-0000003', reason: 'transient timeout'})
      expect(result).toEqual({applied: true, message: 'T-0000003 posted (+24)', on_hand: 43, reserved: 5})
      expect(caches(inventory, 'P-000001')).toEqual({on_hand: 43, reserved: 5})
      expect(row(inventory, 'SELECT status, posted_at FROM transactions WHERE id = ?', 'T-0000003')).toEqual({
        status: 'posted',
        posted_at: NOW,
      })
      expect(await inventory.detect(['ledger_mismatch'])).toEqual([])
      expect((await inventory.detect(['stuck_pending'])).map((finding) => finding.id)).toEqual([
        'stuck_pending:T-0000006',
      ])
    })

    it('changes nothing for an already posted transaction', async () => {
      const inventory = standardInventory()
      expect(await write(inventory, 'reprocess_transaction', {txn_id: 'T-0000002', reason: 'retry'})).toEqual({
        applied: false,
        message: 'T-0000002 is already posted',
        on_hand: 19,
        reserved: 5,
      })
    })

    it('fails when the transaction points at no part', async () => {
      const inventory = standardInventory()
      await expect(write(inventory, 'reprocess_transaction', {txn_id: 'T-0000004', reason: 'retry'})).rejects.toThrow(
        new ToolFailure('reprocess failed: T-0000004 points at no existing part (sku "LEG-BLT10001"); remap it first'),
      )
      expect(status(inventory, 'T-0000004')).toBe('error')
      expect(actionCount(inventory)).toBe(0)
    })

    it('fails when its unit has no conversion', async () => {
      const inventory = standardInventory()
      await expect(write(inventory, 'reprocess_transaction', {txn_id: 'T-0000006', reason: 'retry'})).rejects.toThrow(
        new ToolFailure('reprocess failed: unit "BX" has no conversion for part P-000001; correct the unit first'),
      )
      expect(status(inventory, 'T-0000006')).toBe('pending')
      expect(caches(inventory, 'P-000001')).toEqual({on_hand: 19, reserved: 5})
    })

    it('fails for a void transaction', async () => {
      const inventory = standardInventory()
      await write(inventory, 'void_transaction', {txn_id: 'T-0000003', reason: 'cancelled'})
      await expect(write(inventory, 'reprocess_transaction', {txn_id: 'T-0000003', reason: 'retry'})).rejects.toThrow(
        ToolFailure,
      )
    })
  })

  describe('set_transaction_status', () => {
    it('moves pending to error when expected_status matches', async () => {
      const inventory = standardInventory()
      const result = await write(inventory, 'set_transaction_status', {
        txn_id: 'T-0000003',
        expected_status: 'pending',
        status: 'error',
        reason: 'rejected',
      })
      expect(result).toEqual({applied: true, message: 'T-0000003 pending → error', on_hand: 19, reserved: 5})
      expect(status(inventory, 'T-0000003')).toBe('error')
    })

    it('refuses when the current status is not expected_status (optimistic concurrency)', async () => {
      const inventory = standardInventory()
      await expect(
        write(inventory, 'set_transaction_status', {
          txn_id: 'T-0000004',
          expected_status: 'pending',
          status: 'error',
          reason: 'x',
        }),
      ).rejects.toThrow(new ToolFailure('T-0000004 is error, not pending: nothing changed'))
      await expect(
        write(inventory, 'set_transaction_status', {
          txn_id: 'T-0000002',
          expected_status: 'error',
          status: 'pending',
          reason: 'x',
        }),
      ).rejects.toThrow(ToolFailure)
      expect([status(inventory, 'T-0000004'), status(inventory, 'T-0000002')]).toEqual(['error', 'posted'])
    })

    it('changes nothing when the status already is the target', async () => {
      const inventory = standardInventory()
      const result = await write(inventory, 'set_transaction_status', {
        txn_id: 'T-0000004',
        expected_status: 'error',
        status: 'error',
        reason: 'x',
      })
      expect(result.applied).toBe(false)
      expect(actionCount(inventory)).toBe(0)
    })
  })

  describe('void_transaction', () => {
    it('reverses the stock delta of a posted transaction', async () => {
      const inventory = standardInventory()
      expect(await write(inventory, 'void_transaction', {txn_id: 'T-0000002', reason: 'duplicate issue'})).toEqual({
        applied: true,
        message: 'T-0000002 voided',
        on_hand: 22,
        reserved: 5,
      })
      expect(status(inventory, 'T-0000002')).toBe('void')
      expect(await inventory.detect(['ledger_mismatch'])).toEqual([])
    })

    it('leaves on_hand alone when voiding a pending transaction', async () => {
      const inventory = standardInventory()
      expect((await write(inventory, 'void_transaction', {txn_id: 'T-0000003', reason: 'cancelled'})).on_hand).toBe(19)
      expect(status(inventory, 'T-0000003')).toBe('void')
    })

    it('returns applied:false the second time and does not reverse twice', async () => {
      const inventory = standardInventory()
      await write(inventory, 'void_transaction', {txn_id: 'T-0000002', reason: 'duplicate issue'})
      expect(await write(inventory, 'void_transaction', {txn_id: 'T-0000002', reason: 'duplicate issue'})).toEqual({
        applied: false,
        message: 'T-0000002 is already void',
        on_hand: 22,
        reserved: 5,
      })
      expect(caches(inventory, 'P-000001').on_hand).toBe(22)
      expect(actionCount(inventory)).toBe(1)
    })
  })

  describe('correct_transaction_uom', () => {
    it('corrects the delta of a posted transaction in on_hand', async () => {
      const inventory = standardInventory()
      expect(
        await write(inventory, 'correct_transaction_uom', {txn_id: 'T-0000005', uom: 'EA', reason: 'counted eaches'}),
      ).toEqual({
        applied: true,
        message: 'T-0000005 unit CS → EA',
        on_hand: 8,
        reserved: 5,
      })
      expect((await inventory.getTransaction('T-0000005')).stock_delta).toBe(1)
      expect(await inventory.detect(['ledger_mismatch'])).toEqual([])
    })

    it('changes only the unit of a pending transaction, which can then be posted', async () => {
      const inventory = standardInventory()
      expect(
        (
          await write(inventory, 'correct_transaction_uom', {
            txn_id: 'T-0000006',
            uom: 'CS',
            reason: 'BX means case here',
          })
        ).on_hand,
      ).toBe(19)
      expect((await write(inventory, 'reprocess_transaction', {txn_id: 'T-0000006', reason: 'retry'})).on_hand).toBe(31)
    })

    it('fails for a unit the part has no conversion for', async () => {
      const inventory = standardInventory()
      await expect(
        write(inventory, 'correct_transaction_uom', {txn_id: 'T-0000005', uom: 'PLT', reason: 'x'}),
      ).rejects.toThrow(new ToolFailure('unit "PLT" is neither the unit of P-000001 nor one it has a conversion for'))
      expect(row(inventory, 'SELECT uom FROM transactions WHERE id = ?', 'T-0000005')).toEqual({uom: 'CS'})
    })

    it('fails for a transaction with no part', async () => {
      await expect(
        write(standardInventory(), 'correct_transaction_uom', {txn_id: 'T-0000004', uom: 'EA', reason: 'x'}),
      ).rejects.toThrow(ToolFailure)
    })
  })

  describe('remap_transaction_part', () => {
    it('moves a posted orphan’s delta to the target part', async () => {
      const inventory = standardInventory()
      expect(
        await write(inventory, 'remap_transaction_part', {
          txn_id: 'T-0000007',
          part_id: 'P-000001',
          reason: 'renamed SKU',
        }),
      ).toEqual({
        applied: true,
        message: 'T-0000007 remapped P-999999 → P-000001',
        on_hand: 23,
        reserved: 5,
      })
      expect(row(inventory, 'SELECT part_id FROM transactions WHERE id = ?', 'T-0000007')).toEqual({
        part_id: 'P-000001',
      })
      expect(await inventory.detect(['orphan_transaction', 'ledger_mismatch'])).toEqual([])
    })

    it('moves a posted delta from one existing part to another', async () => {
      const inventory = standardInventory()
      await write(inventory, 'remap_transaction_part', {txn_id: 'T-0000008', part_id: 'P-000001', reason: 'wrong part'})
      expect([caches(inventory, 'P-000001').on_hand, caches(inventory, 'P-000002').on_hand]).toEqual([39, 0])
      expect(await inventory.detect(['ledger_mismatch'])).toEqual([])
    })

    it('leaves on_hand alone when remapping an unposted transaction', async () => {
      const inventory = standardInventory()
      expect(
        (await write(inventory, 'remap_transaction_part', {txn_id: 'T-0000004', part_id: 'P-000001', reason: 'alias'}))
          .on_hand,
      ).toBe(19)
      expect((await write(inventory, 'reprocess_transaction', {txn_id: 'T-0000004', reason: 'retry'})).on_hand).toBe(24)
    })

    it('fails for a posted transaction whose unit the target cannot convert, and for a missing target', async () => {
      const inventory = buildInventory()
        .part({id: 'P-000001', sku: 'BLT-10001', on_hand: 0})
        .transaction({id: 'T-0000001', part_id: 'P-999999', sku: 'LEG-1', qty: 2, uom: 'CS'})
        .open()
      await expect(
        write(inventory, 'remap_transaction_part', {txn_id: 'T-0000001', part_id: 'P-000001', reason: 'x'}),
      ).rejects.toThrow(new ToolFailure('unit "CS" has no conversion for P-000001; correct the unit first'))
      await expect(
        write(inventory, 'remap_transaction_part', {txn_id: 'T-0000001', part_id: 'P-000404', reason: 'x'}),
      ).rejects.toThrow(new ToolFailure('part "P-000404" does not exist'))
      expect(row(inventory, 'SELECT part_id FROM transactions WHERE id = ?', 'T-0000001')).toEqual({
        part_id: 'P-999999',
      })
    })
  })

  describe('recompute_on_hand', () => {
    it('sets on_hand to the ledger balance, then has nothing left to do', async () => {
      const inventory = standardInventory()
      inventory.db.run(`UPDATE parts SET on_hand = 50 WHERE id = 'P-000001'`)
      expect(await write(inventory, 'recompute_on_hand', {part_id: 'P-000001', reason: 'cache drift'})).toEqual({
        applied: true,
        message: 'P-000001 on_hand 50 → 19',
        on_hand: 19,
        reserved: 5,
      })
      expect((await write(inventory, 'recompute_on_hand', {part_id: 'P-000001', reason: 'cache drift'})).applied).toBe(
        false,
      )
    })
  })

  describe('recompute_reserved', () => {
    it('sets reserved to the sum of active reservations', async () => {
      const inventory = standardInventory()
      inventory.db.run(`UPDATE parts SET reserved = 9 WHERE id = 'P-000001'`)
      expect(await write(inventory, 'recompute_reserved', {part_id: 'P-000001', reason: 'drift'})).toEqual({
        applied: true,
        message: 'P-000001 reserved 9 → 5',
        on_hand: 19,
        reserved: 5,
      })
      expect((await write(inventory, 'recompute_reserved', {part_id: 'P-000001', reason: 'drift'})).applied).toBe(false)
    })
  })

  describe('release_reservation', () => {
    it('releases an active reservation and lowers reserved by its quantity', async () => {
      const inventory = standardInventory()
      expect(
        await write(inventory, 'release_reservation', {reservation_id: 'R-000001', reason: 'order shipped'}),
      ).toEqual({applied: true, message: 'R-000001 released (3)', on_hand: 19, reserved: 2})
      expect(row(inventory, 'SELECT status FROM reservations WHERE id = ?', 'R-000001')).toEqual({status: 'released'})
      expect(await inventory.detect(['reservation_drift'])).toEqual([])
    })

    it('changes nothing for a reservation that is not active, and fails for a missing one', async () => {
      const inventory = standardInventory()
      expect(await write(inventory, 'release_reservation', {reservation_id: 'R-000003', reason: 'x'})).toEqual({
        applied: false,
        message: 'R-000003 is already released',
        on_hand: 19,
        reserved: 5,
      })
      await expect(write(inventory, 'release_reservation', {reservation_id: 'R-404', reason: 'x'})).rejects.toThrow(
        new ToolFailure('reservation "R-404" does not exist'),
      )
    })
  })

  describe('adjust_quantity', () => {
    it('posts an adjustment to the ledger and to on_hand', async () => {
      const inventory = standardInventory()
      const result = await write(
        inventory,
        'adjust_quantity',
        {part_id: 'P-000001', delta: -2, reason: 'physical count'},
        context('0123456789abcdef0123'),
      )
      expect(result).toEqual({
        applied: true,
        message: 'P-000001 adjusted by -2 (T-ADJ-0123456789ab)',
        on_hand: 17,
        reserved: 5,
      })
      expect(
        row(
          inventory,
          'SELECT part_id, sku, kind, qty, uom, status, source, external_ref, created_at, posted_at FROM transactions WHERE id = ?',
          'T-ADJ-0123456789ab',
        ),
      ).toEqual({
        part_id: 'P-000001',
        sku: 'BLT-10001',
        kind: 'adjustment',
        qty: -2,
        uom: 'EA',
        status: 'posted',
        source: 'invagent',
        external_ref: 'ADJ-0123456789abcdef',
        created_at: NOW,
        posted_at: NOW,
      })
      expect(await inventory.detect(['ledger_mismatch'])).toEqual([])
    })

    it('changes nothing for a zero delta', async () => {
      const inventory = standardInventory()
      expect((await write(inventory, 'adjust_quantity', {part_id: 'P-000001', delta: 0, reason: 'x'})).applied).toBe(
        false,
      )
      expect(row(inventory, `SELECT count(*) AS n FROM transactions WHERE kind = 'adjustment'`)).toEqual({n: 0})
    })
  })
})

describe('idempotency', () => {
  it('applies a write once under the same idempotency key', async () => {
    const inventory = standardInventory()
    const key = context('f00dfeedf00dfeedf00d')
    const first = await write(inventory, 'adjust_quantity', {part_id: 'P-000001', delta: 5, reason: 'count'}, key)
    const second = await write(inventory, 'adjust_quantity', {part_id: 'P-000001', delta: 5, reason: 'count'}, key)
    expect(first.applied).toBe(true)
    expect(second).toEqual({
      applied: false,
      message: 'already applied under idempotency key f00dfeedf00d: P-000001 adjusted by 5 (T-ADJ-f00dfeedf00d)',
      on_hand: 24,
      reserved: 5,
    })
    expect(caches(inventory, 'P-000001').on_hand).toBe(24)
    expect(inventory.db.all('SELECT idempotency_key, run_id, finding_id, tool, args FROM agent_actions')).toEqual([
      {
        idempotency_key: 'f00dfeedf00dfeedf00d',
        run_id: 'run-test',
        finding_id: 'test:finding',
        tool: 'adjust_quantity',
        args: '{"delta":5,"part_id":"P-000001","reason":"count"}',
      },
    ])
  })

  it('applies again under a different key', async () => {
    const inventory = standardInventory()
    await write(
      inventory,
      'adjust_quantity',
      {part_id: 'P-000001', delta: 5, reason: 'count'},
      context('aaaaaaaaaaaaaaaaaaaa'),
    )
    await write(
      inventory,
      'adjust_quantity',
      {part_id: 'P-000001', delta: 5, reason: 'count'},
      context('bbbbbbbbbbbbbbbbbbbb'),
    )
    expect(caches(inventory, 'P-000001').on_hand).toBe(29)
    expect(actionCount(inventory)).toBe(2)
  })

  it('records nothing for a write that failed, so a retry under the same key runs', async () => {
    const inventory = standardInventory()
    const key = context('cccccccccccccccccccc')
    await expect(
      write(inventory, 'reprocess_transaction', {txn_id: 'T-0000004', reason: 'retry'}, key),
    ).rejects.toThrow(ToolFailure)
    expect(actionCount(inventory)).toBe(0)
    await write(inventory, 'remap_transaction_part', {txn_id: 'T-0000004', part_id: 'P-000001', reason: 'alias'})
    expect((await write(inventory, 'reprocess_transaction', {txn_id: 'T-0000004', reason: 'retry'}, key)).applied).toBe(
      true,
    )
  })
})

describe('previewWrite', () => {
  const writes: Array<{
    tool: WriteToolName
    args: Record<string, unknown>
    partId: string
    onHandDelta: number
    reservedDelta: number
    setup?: string
  }> = [
    {
      tool: 'reprocess_transaction',
      args: {txn_id: 'T-0000003', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: 24,
      reservedDelta: 0,
    },
    {
      tool: 'reprocess_transaction',
      args: {txn_id: 'T-0000002', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: 0,
      reservedDelta: 0,
    },
    {
      tool: 'set_transaction_status',
      args: {txn_id: 'T-0000003', expected_status: 'pending', status: 'error', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: 0,
      reservedDelta: 0,
    },
    {
      tool: 'void_transaction',
      args: {txn_id: 'T-0000002', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: 3,
      reservedDelta: 0,
    },
    {
      tool: 'void_transaction',
      args: {txn_id: 'T-0000003', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: 0,
      reservedDelta: 0,
    },
    {
      tool: 'correct_transaction_uom',
      args: {txn_id: 'T-0000005', uom: 'EA', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: -11,
      reservedDelta: 0,
    },
    {
      tool: 'remap_transaction_part',
      args: {txn_id: 'T-0000007', part_id: 'P-000001', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: 4,
      reservedDelta: 0,
    },
    {
      tool: 'recompute_on_hand',
      args: {part_id: 'P-000001', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: -31,
      reservedDelta: 0,
      setup: `UPDATE parts SET on_hand = 50 WHERE id = 'P-000001'`,
    },
    {
      tool: 'recompute_reserved',
      args: {part_id: 'P-000001', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: 0,
      reservedDelta: -4,
      setup: `UPDATE parts SET reserved = 9 WHERE id = 'P-000001'`,
    },
    {
      tool: 'release_reservation',
      args: {reservation_id: 'R-000001', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: 0,
      reservedDelta: -3,
    },
    {
      tool: 'release_reservation',
      args: {reservation_id: 'R-000003', reason: 'r'},
      partId: 'P-000001',
      onHandDelta: 0,
      reservedDelta: 0,
    },
    {
      tool: 'adjust_quantity',
      args: {part_id: 'P-000002', delta: -7, reason: 'r'},
      partId: 'P-000002',
      onHandDelta: -7,
      reservedDelta: 0,
    },
  ]

  it('covers every write tool', () => {
    expect([...new Set(writes.map((entry) => entry.tool))].sort()).toEqual(
      TOOLS.filter((tool) => tool.effect === 'write')
        .map((tool) => tool.name)
        .sort(),
    )
  })

  it.each(writes)(
    '$tool $args: the preview equals the change applyWrite makes',
    async ({tool, args, partId, onHandDelta, reservedDelta, setup}) => {
      const inventory = standardInventory()
      if (setup) inventory.db.exec(setup)
      const impact = await previewWrite(inventory, tool, args as ToolArgs<WriteToolName>)
      expect(impact).toEqual({partId, onHandDelta, reservedDelta})
      const before = caches(inventory, partId)
      await applyWrite(inventory, tool, args as ToolArgs<WriteToolName>, context())
      const after = caches(inventory, partId)
      expect({onHandDelta: after.on_hand - before.on_hand, reservedDelta: after.reserved - before.reserved}).toEqual({
        onHandDelta,
        reservedDelta,
      })
    },
  )

  it('changes nothing itself', async () => {
    const inventory = standardInventory()
    for (const {tool, args} of writes) await previewWrite(inventory, tool, args as ToolArgs<WriteToolName>)
    expect(caches(inventory, 'P-000001')).toEqual({on_hand: 19, reserved: 5})
    expect(status(inventory, 'T-0000003')).toBe('pending')
    expect(actionCount(inventory)).toBe(0)
  })
})
