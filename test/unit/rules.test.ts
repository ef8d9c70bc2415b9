import {afterEach, describe, expect, it} from 'vitest'

import type {Finding} from '../../src/detect/finding.js'
import {scopeOf} from '../../src/agent/scope.js'
import type {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {RULES} from '../../src/tools/catalogue.js'
import {
  buildInventory,
  everything,
  HOUR_MS,
  MINUTE_MS,
  NOW,
  removeBuiltInventories,
  type InventoryBuilder,
} from '../helpers/inventory-builder.js'

afterEach(removeBuiltInventories)

/** One healthy part: 10 EA received and posted, caches equal to the ledger. */
function healthyPart(builder: InventoryBuilder, id = 'P-000001', sku = 'BLT-10001'): InventoryBuilder {
  return builder
    .part({id, sku, uom: 'EA', on_hand: 10})
    .transaction({
      id: `T-${id.slice(2)}0`,
      part_id: id,
      kind: 'receipt',
      qty: 10,
      external_ref: `ASN-2026-${id.slice(2)}/1`,
    })
}

interface RuleCase {
  name: string
  build: () => SqliteInventory
  expected: Finding[]
}

/*
 * Each case is a whole inventory and the complete list of findings it must produce, so that a
 * rule firing where it must not (or a second rule joining in) fails the test as surely as a
 * rule that stays silent.
 */
const cases: RuleCase[] = [
  // ---- negative_on_hand
  {
    name: 'negative_on_hand fires when on_hand < 0 (ledger agrees, reserved 0: no reservation_drift)',
    build: () =>
      buildInventory()
        .part({id: 'P-000001', sku: 'BLT-10001', on_hand: -5})
        .transaction({id: 'T-0000001', part_id: 'P-000001', kind: 'receipt', qty: 10})
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'issue',
          qty: -15,
          source: 'ecommerce',
          external_ref: 'SO-2026-0000001/1',
        })
        .open(),
    expected: [
      {
        id: 'negative_on_hand:P-000001',
        rule: 'negative_on_hand',
        entity: 'P-000001',
        severity: 'high',
        evidence: {on_hand: -5},
      },
    ],
  },
  {
    name: 'negative_on_hand does not fire at exactly 0',
    build: () =>
      buildInventory()
        .part({id: 'P-000001', sku: 'BLT-10001', on_hand: 0})
        .transaction({id: 'T-0000001', part_id: 'P-000001', kind: 'receipt', qty: 5})
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'issue',
          qty: -5,
          source: 'ecommerce',
          external_ref: 'SO-2026-0000001/1',
        })
        .open(),
    expected: [],
  },
  // ---- ledger_mismatch
  {
    name: 'ledger_mismatch fires when on_hand differs from the posted deltas',
    build: () => healthyPart(buildInventory()).sql(`UPDATE parts SET on_hand = 12 WHERE id = 'P-000001'`).open(),
    expected: [
      {
        id: 'ledger_mismatch:P-000001',
        rule: 'ledger_mismatch',
        entity: 'P-000001',
        severity: 'medium',
        evidence: {on_hand: 12, ledger_balance: 10, difference: 2},
      },
    ],
  },
  {
    name: 'ledger_mismatch does not fire when pack units convert and pending, error and void rows are left out',
    build: () =>
      buildInventory()
        .part({id: 'P-000001', sku: 'BLT-10001', uom: 'EA', on_hand: 27})
        .conversion('P-000001', 'CS', 12)
        .transaction({id: 'T-0000001', part_id: 'P-000001', kind: 'receipt', qty: 2, uom: 'CS'})
        .transaction({id: 'T-0000002', part_id: 'P-000001', kind: 'receipt', qty: 3, uom: 'EA'})
        .transaction({
          id: 'T-0000003',
          part_id: 'P-000001',
          kind: 'receipt',
          qty: 100,
          status: 'pending',
          created_at: NOW - 10 * MINUTE_MS,
        })
        .transaction({
          id: 'T-0000004',
          part_id: 'P-000001',
          kind: 'issue',
          qty: -7,
          status: 'void',
          source: 'ecommerce',
        })
        .open(),
    expected: [],
  },
  // ---- stuck_pending
  {
    name: 'stuck_pending fires for a pending transaction older than 2 h',
    build: () =>
      healthyPart(buildInventory())
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'receipt',
          qty: 5,
          status: 'pending',
          created_at: NOW - 3 * HOUR_MS,
        })
        .open(),
    expected: [
      {
        id: 'stuck_pending:T-0000002',
        rule: 'stuck_pending',
        entity: 'T-0000002',
        severity: 'medium',
        evidence: {status: 'pending', source: 'wms', age_minutes: 180},
      },
    ],
  },
  {
    name: 'stuck_pending fires one millisecond past 2 h',
    build: () =>
      healthyPart(buildInventory())
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'receipt',
          qty: 5,
          status: 'pending',
          created_at: NOW - 2 * HOUR_MS - 1,
        })
        .open(),
    expected: [
      {
        id: 'stuck_pending:T-0000002',
        rule: 'stuck_pending',
        entity: 'T-0000002',
        severity: 'medium',
        evidence: {status: 'pending', source: 'wms', age_minutes: 120},
      },
    ],
  },
  {
    name: 'stuck_pending does not fire for a pending transaction exactly 2 h old or younger',
    build: () =>
      healthyPart(buildInventory())
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'receipt',
          qty: 5,
          status: 'pending',
          created_at: NOW - 2 * HOUR_MS,
        })
        .transaction({
          id: 'T-0000003',
          part_id: 'P-000001',
          kind: 'receipt',
          qty: 5,
          status: 'pending',
          created_at: NOW - 119 * MINUTE_MS,
        })
        .open(),
    expected: [],
  },
  {
    name: 'stuck_pending follows the inventory clock, not the wall clock',
    build: () =>
      healthyPart(buildInventory())
        .clock(NOW - 2 * HOUR_MS)
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'receipt',
          qty: 5,
          status: 'pending',
          created_at: NOW - 3 * HOUR_MS,
        })
        .open(),
    expected: [],
  },
  // ---- sync_error
  {
    name: 'sync_error fires for an error transaction of any age (and not stuck_pending)',
    build: () =>
      healthyPart(buildInventory())
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'issue',
          qty: -2,
          status: 'error',
          source: 'ecommerce',
          created_at: NOW - 5 * MINUTE_MS,
        })
        .transaction({
          id: 'T-0000003',
          part_id: 'P-000001',
          kind: 'receipt',
          qty: 4,
          status: 'error',
          source: 'erp',
          created_at: NOW - 26 * HOUR_MS,
        })
        .open(),
    expected: [
      {
        id: 'sync_error:T-0000002',
        rule: 'sync_error',
        entity: 'T-0000002',
        severity: 'medium',
        evidence: {status: 'error', source: 'ecommerce', age_minutes: 5},
      },
      {
        id: 'sync_error:T-0000003',
        rule: 'sync_error',
        entity: 'T-0000003',
        severity: 'medium',
        evidence: {status: 'error', source: 'erp', age_minutes: 1560},
      },
    ],
  },
  {
    name: 'sync_error does not fire for void transactions',
    build: () =>
      healthyPart(buildInventory())
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'issue',
          qty: -2,
          status: 'void',
          source: 'ecommerce',
          created_at: NOW - 5 * HOUR_MS,
        })
        .open(),
    expected: [],
  },
  // ---- duplicate_posting
  {
    name: 'duplicate_posting fires on the later posting by created_at, whatever the ids',
    build: () =>
      buildInventory()
        .part({id: 'P-000001', sku: 'BLT-10001', on_hand: 6})
        .transaction({id: 'T-0000001', part_id: 'P-000001', kind: 'receipt', qty: 10, created_at: NOW - 48 * HOUR_MS})
        // T-0000003 was created first: it is the original, T-0000002 the redelivery.
        .transaction({
          id: 'T-0000003',
          part_id: 'P-000001',
          kind: 'issue',
          qty: -2,
          source: 'ecommerce',
          external_ref: 'SO-2026-0000001/1',
          created_at: NOW - 10 * HOUR_MS,
        })
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'issue',
          qty: -2,
          source: 'ecommerce',
          external_ref: 'SO-2026-0000001/1',
          created_at: NOW - 9 * HOUR_MS,
        })
        .open(),
    expected: [
      {
        id: 'duplicate_posting:T-0000002',
        rule: 'duplicate_posting',
        entity: 'T-0000002',
        severity: 'high',
        evidence: {source: 'ecommerce', external_ref: 'SO-2026-0000001/1', first_posting: 'T-0000003', postings: 2},
      },
    ],
  },
  {
    name: 'duplicate_posting names every later posting of a triple',
    build: () =>
      buildInventory()
        .part({id: 'P-000001', sku: 'BLT-10001', on_hand: 30})
        .transaction({
          id: 'T-0000001',
          part_id: 'P-000001',
          kind: 'receipt',
          qty: 10,
          external_ref: 'ASN-2026-0000001/1',
          created_at: NOW - 30 * HOUR_MS,
        })
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'receipt',
          qty: 10,
          external_ref: 'ASN-2026-0000001/1',
          created_at: NOW - 29 * HOUR_MS,
        })
        .transaction({
          id: 'T-0000003',
          part_id: 'P-000001',
          kind: 'receipt',
          qty: 10,
          external_ref: 'ASN-2026-0000001/1',
          created_at: NOW - 28 * HOUR_MS,
        })
        .open(),
    expected: ['T-0000002', 'T-0000003'].map((id) => ({
      id: `duplicate_posting:${id}`,
      rule: 'duplicate_posting' as const,
      entity: id,
      severity: 'high' as const,
      evidence: {source: 'wms', external_ref: 'ASN-2026-0000001/1', first_posting: 'T-0000001', postings: 3},
    })),
  },
  {
    name: 'duplicate_posting does not fire for a void, a pending or an other-source row with the same reference',
    build: () =>
      buildInventory()
        .part({id: 'P-000001', sku: 'BLT-10001', on_hand: 8})
        .transaction({id: 'T-0000001', part_id: 'P-000001', kind: 'receipt', qty: 10, created_at: NOW - 48 * HOUR_MS})
        .transaction({
          id: 'T-0000002',
          part_id: 'P-000001',
          kind: 'issue',
          qty: -2,
          source: 'ecommerce',
          external_ref: 'SO-2026-0000001/1',
          created_at: NOW - 10 * HOUR_MS,
        })
        .transaction({
          id: 'T-0000003',
          part_id: 'P-000001',
          kind: 'issue',
          qty: -2,
          source: 'ecommerce',
          external_ref: 'SO-2026-0000001/1',
          status: 'void',
          created_at: NOW - 9 * HOUR_MS,
        })
        .transaction({
          id: 'T-0000004',
          part_id: 'P-000001',
          kind: 'issue',
          qty: -2,
          source: 'ecommerce',
          external_ref: 'SO-2026-0000001/1',
          status: 'pending',
          created_at: NOW - 30 * MINUTE_MS,
        })
        .transaction({
          id: 'T-0000005',
          part_id: 'P-000001',
          kind: 'issue',
          qty: 0,
          source: 'erp',
          external_ref: 'SO-2026-0000001/1',
          created_at: NOW - 8 * HOUR_MS,
        })
        .open(),
    expected: [],
  },
  // ---- orphan_transaction
  {
    name: 'orphan_transaction fires for a posted transaction whose part does not exist, or has none',
    build: () =>
      healthyPart(buildInventory())
        .transaction({id: 'T-0000002', part_id: 'P-999999', sku: 'LEG-BLT10001', kind: 'receipt', qty: 4})
        .transaction({id: 'T-0000003', part_id: null, sku: 'XYZ-1', kind: 'receipt', qty: 1, uom: 'CS'})
        .open(),
    expected: [
      {
        id: 'orphan_transaction:T-0000002',
        rule: 'orphan_transaction',
        entity: 'T-0000002',
        severity: 'medium',
        evidence: {part_id: 'P-999999', sku: 'LEG-BLT10001'},
      },
      {
        id: 'orphan_transaction:T-0000003',
        rule: 'orphan_transaction',
        entity: 'T-0000003',
        severity: 'medium',
        evidence: {part_id: null, sku: 'XYZ-1'},
      },
    ],
  },
  {
    name: 'orphan_transaction does not fire for an orphan that is pending (young) or void',
    build: () =>
      healthyPart(buildInventory())
        .transaction({
          id: 'T-0000002',
          part_id: 'P-999999',
          sku: 'LEG-BLT10001',
          kind: 'receipt',
          qty: 4,
          status: 'pending',
          created_at: NOW - 30 * MINUTE_MS,
        })
        .transaction({id: 'T-0000003', part_id: null, sku: 'XYZ-1', kind: 'receipt', qty: 1, status: 'void'})
        .open(),
    expected: [],
  },
  // ---- reservation_drift
  {
    name: 'reservation_drift fires (medium) when reserved differs from active reservations',
    build: () =>
      healthyPart(buildInventory())
        .sql(`UPDATE parts SET reserved = 5 WHERE id = 'P-000001'`)
        .reservation({id: 'R-000001', part_id: 'P-000001', qty: 3, order_ref: 'SO-2026-0000002/1'})
        .reservation({id: 'R-000002', part_id: 'P-000001', qty: 4, order_ref: 'SO-2026-0000003/1', status: 'released'})
        .reservation({id: 'R-000003', part_id: 'P-000001', qty: 2, order_ref: 'SO-2026-0000004/1', status: 'fulfilled'})
        .open(),
    expected: [
      {
        id: 'reservation_drift:P-000001',
        rule: 'reservation_drift',
        entity: 'P-000001',
        severity: 'medium',
        evidence: {reserved: 5, active_reserved: 3, on_hand: 10},
      },
    ],
  },
  {
    name: 'reservation_drift fires (high) when reserved exceeds on_hand even though it matches the reservations',
    build: () =>
      healthyPart(buildInventory())
        .sql(`UPDATE parts SET reserved = 12 WHERE id = 'P-000001'`)
        .reservation({id: 'R-000001', part_id: 'P-000001', qty: 12, order_ref: 'SO-2026-0000002/1'})
        .open(),
    expected: [
      {
        id: 'reservation_drift:P-000001',
        rule: 'reservation_drift',
        entity: 'P-000001',
        severity: 'high',
        evidence: {reserved: 12, active_reserved: 12, on_hand: 10},
      },
    ],
  },
  {
    name: 'reservation_drift does not fire when reserved equals active reservations and fits on_hand (released and fulfilled ignored)',
    build: () =>
      healthyPart(buildInventory())
        .sql(`UPDATE parts SET reserved = 10 WHERE id = 'P-000001'`)
        .reservation({id: 'R-000001', part_id: 'P-000001', qty: 10, order_ref: 'SO-2026-0000002/1'})
        .reservation({id: 'R-000002', part_id: 'P-000001', qty: 4, order_ref: 'SO-2026-0000003/1', status: 'released'})
        .open(),
    expected: [],
  },
  // ---- uom_mismatch
  {
    name: 'uom_mismatch fires for a posted transaction in a unit the part has no conversion for',
    build: () =>
      healthyPart(buildInventory())
        .conversion('P-000001', 'BX', 6)
        .transaction({id: 'T-0000002', part_id: 'P-000001', kind: 'receipt', qty: 2, uom: 'CS'})
        .open(),
    expected: [
      {
        id: 'uom_mismatch:T-0000002',
        rule: 'uom_mismatch',
        entity: 'T-0000002',
        severity: 'medium',
        evidence: {uom: 'CS', part_uom: 'EA', qty: 2},
      },
    ],
  },
  {
    name: 'uom_mismatch does not fire for a converted pack unit, nor for an unconvertible unit that is not posted',
    build: () =>
      buildInventory()
        .part({id: 'P-000001', sku: 'BLT-10001', uom: 'EA', on_hand: 24})
        .conversion('P-000001', 'CS', 12)
        .transaction({id: 'T-0000001', part_id: 'P-000001', kind: 'receipt', qty: 2, uom: 'CS'})
        .transaction({id: 'T-0000002', part_id: 'P-000001', kind: 'receipt', qty: 2, uom: 'PLT', status: 'void'})
        .open(),
    expected: [],
  },
]

describe('detection rules', () => {
  it('covers every rule with a case where it fires', () => {
    const fired = new Set(cases.flatMap((testCase) => testCase.expected.map((finding) => finding.rule)))
    expect([...fired].sort()).toEqual([...RULES].sort())
  })

  describe.each(cases)('$name', ({build, expected}) => {
    it('detect() returns exactly these findings', async () => {
      const inventory = build()
      expect(await inventory.detect()).toEqual(expected)
    })

    it('detectInScope() over every entity agrees with detect()', async () => {
      const inventory = build()
      expect(await inventory.detectInScope(everything(inventory))).toEqual(await inventory.detect())
    })

    if (expected.length > 0) {
      it('detectInScope() on the scope of each finding finds it again', async () => {
        const inventory = build()
        for (const finding of expected) {
          const again = await inventory.detectInScope(await scopeOf(inventory, finding))
          expect(again).toContainEqual(finding)
        }
      })
    }
  })

  it('detect(rules) runs only the named rules', async () => {
    const inventory = healthyPart(buildInventory())
      .sql(`UPDATE parts SET on_hand = -1 WHERE id = 'P-000001'`)
      .transaction({id: 'T-0000002', part_id: 'P-000001', qty: 1, status: 'error'})
      .open()
    expect((await inventory.detect()).map((finding) => finding.id)).toEqual([
      'negative_on_hand:P-000001',
      'ledger_mismatch:P-000001',
      'sync_error:T-0000002',
    ])
    expect((await inventory.detect(['sync_error'])).map((finding) => finding.id)).toEqual(['sync_error:T-0000002'])
    expect((await inventory.detect(['ledger_mismatch'])).map((finding) => finding.id)).toEqual([
      'ledger_mismatch:P-000001',
    ])
  })

  it('detectInScope() answers only for the entities in the scope', async () => {
    const inventory = healthyPart(buildInventory())
      .sql(`UPDATE parts SET on_hand = 11 WHERE id = 'P-000001'`)
      .transaction({id: 'T-0000002', part_id: 'P-000001', qty: 1, status: 'error'})
      .open()
    const none = {
      partIds: new Set<string>(),
      txnIds: new Set<string>(),
      reservationIds: new Set<string>(),
      remapTargets: new Map<string, string>(),
    }
    expect(await inventory.detectInScope(none)).toEqual([])
    expect(
      (await inventory.detectInScope({...none, txnIds: new Set(['T-0000002'])})).map((finding) => finding.id),
    ).toEqual(['sync_error:T-0000002'])
    expect(
      (await inventory.detectInScope({...none, partIds: new Set(['P-000001'])})).map((finding) => finding.id),
    ).toEqual(['ledger_mismatch:P-000001'])
  })
})
