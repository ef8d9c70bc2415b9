import {afterEach, describe, expect, it} from 'vitest'

import {checkWrite, DEFAULT_POLICY, type PermissionProfile, type PolicyOptions} from '../../src/agent/policy.js'
import {scopeOf, type FindingScope} from '../../src/agent/scope.js'
import type {WriteImpact} from '../../src/inventory/backend.js'
import {TOOLS, type WriteToolName} from '../../src/tools/tools.js'
import {buildInventory, removeBuiltInventories} from '../helpers/inventory-builder.js'

afterEach(removeBuiltInventories)

const WRITE_TOOLS = TOOLS.filter((tool) => tool.effect === 'write').map((tool) => tool.name as WriteToolName)

/** The scope of a finding on P-000001: its transactions and reservations, and one remap target. */
const scope: FindingScope = {
  partIds: new Set(['P-000001']),
  txnIds: new Set(['T-0000001', 'T-0000002']),
  reservationIds: new Set(['R-000001']),
  remapTargets: new Map([['T-0000002', 'P-000001']]),
}

/** In-scope arguments for every write tool. */
const ARGS: Record<WriteToolName, Record<string, unknown>> = {
  reprocess_transaction: {txn_id: 'T-0000001', reason: 'r'},
  set_transaction_status: {txn_id: 'T-0000001', expected_status: 'pending', status: 'error', reason: 'r'},
  void_transaction: {txn_id: 'T-0000001', reason: 'r'},
  recompute_on_hand: {part_id: 'P-000001', reason: 'r'},
  recompute_reserved: {part_id: 'P-000001', reason: 'r'},
  release_reservation: {reservation_id: 'R-000001', reason: 'r'},
  correct_transaction_uom: {txn_id: 'T-0000001', uom: 'EA', reason: 'r'},
  remap_transaction_part: {txn_id: 'T-0000002', part_id: 'P-000001', reason: 'r'},
  adjust_quantity: {part_id: 'P-000001', delta: 3, reason: 'r'},
}

const small: WriteImpact = {partId: 'P-000001', onHandDelta: 3, reservedDelta: 0}
const noWrites = {finding: 0, run: 0}

function policy(overrides: Partial<PolicyOptions> = {}): PolicyOptions {
  return {...DEFAULT_POLICY, ...overrides}
}

describe('checkWrite: permission profiles', () => {
  it.each(WRITE_TOOLS)('observe denies %s', (tool) => {
    expect(checkWrite(policy({profile: 'observe'}), scope, tool, ARGS[tool], small, noWrites)).toEqual({
      allowed: false,
      reason: `the "observe" permission profile does not allow ${tool}`,
    })
  })

  it.each(WRITE_TOOLS.filter((tool) => tool !== 'adjust_quantity'))('standard and full allow %s', (tool) => {
    for (const profile of ['standard', 'full'] satisfies PermissionProfile[]) {
      expect(checkWrite(policy({profile}), scope, tool, ARGS[tool], small, noWrites)).toEqual({
        allowed: true,
        needsApproval: false,
      })
    }
  })

  it('standard denies adjust_quantity, full allows it', () => {
    expect(
      checkWrite(policy({profile: 'standard'}), scope, 'adjust_quantity', ARGS.adjust_quantity, small, noWrites),
    ).toEqual({
      allowed: false,
      reason: 'the "standard" permission profile does not allow adjust_quantity',
    })
    expect(
      checkWrite(policy({profile: 'full'}), scope, 'adjust_quantity', ARGS.adjust_quantity, small, noWrites),
    ).toEqual({allowed: true, needsApproval: false})
  })

  it('the default profile is standard', () => {
    expect(DEFAULT_POLICY.profile).toBe('standard')
  })
})

describe('checkWrite: scope', () => {
  const full = policy({profile: 'full'})

  it.each(['reprocess_transaction', 'set_transaction_status', 'void_transaction', 'correct_transaction_uom'] as const)(
    '%s on a transaction outside the scope is denied',
    (tool) => {
      expect(checkWrite(full, scope, tool, {...ARGS[tool], txn_id: 'T-0000099'}, small, noWrites)).toEqual({
        allowed: false,
        reason: "transaction T-0000099 is outside this finding's scope",
      })
    },
  )

  it.each(['recompute_on_hand', 'recompute_reserved', 'adjust_quantity'] as const)(
    '%s on a part outside the scope is denied',
    (tool) => {
      expect(checkWrite(full, scope, tool, {...ARGS[tool], part_id: 'P-000002'}, small, noWrites)).toEqual({
        allowed: false,
        reason: "part P-000002 is outside this finding's scope",
      })
    },
  )

  it('release_reservation of a reservation outside the scope is denied', () => {
    expect(
      checkWrite(full, scope, 'release_reservation', {reservation_id: 'R-000099', reason: 'r'}, small, noWrites),
    ).toEqual({
      allowed: false,
      reason: "reservation R-000099 is outside this finding's scope",
    })
  })

  it('remap to a part other than the scope’s remap target is denied, even to a part in scope', () => {
    const wider: FindingScope = {...scope, partIds: new Set(['P-000001', 'P-000003'])}
    expect(
      checkWrite(
        full,
        wider,
        'remap_transaction_part',
        {txn_id: 'T-0000002', part_id: 'P-000003', reason: 'r'},
        small,
        noWrites,
      ),
    ).toEqual({
      allowed: false,
      reason: 'P-000003 is not the one part that the SKU of T-0000002 resolves to',
    })
  })

  it('remap of a transaction without a remap target is denied', () => {
    expect(
      checkWrite(
        full,
        scope,
        'remap_transaction_part',
        {txn_id: 'T-0000001', part_id: 'P-000001', reason: 'r'},
        small,
        noWrites,
      ),
    ).toEqual({
      allowed: false,
      reason: 'P-000001 is not the one part that the SKU of T-0000001 resolves to',
    })
  })

  it('remap of a transaction outside the scope is denied', () => {
    expect(
      checkWrite(
        full,
        scope,
        'remap_transaction_part',
        {txn_id: 'T-0000099', part_id: 'P-000001', reason: 'r'},
        small,
        noWrites,
      ),
    ).toEqual({
      allowed: false,
      reason: "transaction T-0000099 is outside this finding's scope",
    })
  })
})

describe('checkWrite: bounds and approval', () => {
  const tool = 'recompute_on_hand'
  const args = ARGS.recompute_on_hand

  it('allows writes up to the per-finding bound, then denies', () => {
    const bounded = policy({maxWritesPerFinding: 2})
    expect(checkWrite(bounded, scope, tool, args, small, {finding: 1, run: 1})).toEqual({
      allowed: true,
      needsApproval: false,
    })
    expect(checkWrite(bounded, scope, tool, args, small, {finding: 2, run: 2})).toEqual({
      allowed: false,
      reason: 'at most 2 writes per finding',
    })
  })

  it('allows writes up to the per-run bound, then denies', () => {
    const bounded = policy({maxWritesPerRun: 10})
    expect(checkWrite(bounded, scope, tool, args, small, {finding: 0, run: 9})).toEqual({
      allowed: true,
      needsApproval: false,
    })
    expect(checkWrite(bounded, scope, tool, args, small, {finding: 0, run: 10})).toEqual({
      allowed: false,
      reason: 'at most 10 writes per run',
    })
  })

  it('denies an impact above maxImpact, on on_hand or on reserved', () => {
    const bounded = policy({maxImpact: 100, approveAbove: 50})
    expect(
      checkWrite(bounded, scope, tool, args, {partId: 'P-000001', onHandDelta: 100, reservedDelta: 0}, noWrites),
    ).toEqual({allowed: true, needsApproval: true})
    expect(
      checkWrite(bounded, scope, tool, args, {partId: 'P-000001', onHandDelta: -101, reservedDelta: 0}, noWrites),
    ).toEqual({
      allowed: false,
      reason: 'it would move stock by 101, above the bound of 100',
    })
    expect(
      checkWrite(
        bounded,
        scope,
        'recompute_reserved',
        args,
        {partId: 'P-000001', onHandDelta: 0, reservedDelta: 150},
        noWrites,
      ),
    ).toEqual({
      allowed: false,
      reason: 'it would move stock by 150, above the bound of 100',
    })
  })

  it('needs approval strictly above approveAbove', () => {
    const bounded = policy({approveAbove: 5000})
    expect(
      checkWrite(bounded, scope, tool, args, {partId: 'P-000001', onHandDelta: 5000, reservedDelta: 0}, noWrites),
    ).toEqual({allowed: true, needsApproval: false})
    expect(
      checkWrite(bounded, scope, tool, args, {partId: 'P-000001', onHandDelta: -5001, reservedDelta: 0}, noWrites),
    ).toEqual({allowed: true, needsApproval: true})
    expect(
      checkWrite(
        bounded,
        scope,
        'release_reservation',
        ARGS.release_reservation,
        {partId: 'P-000001', onHandDelta: 0, reservedDelta: -5001},
        noWrites,
      ),
    ).toEqual({allowed: true, needsApproval: true})
  })

  it('checks the profile before the scope, and the scope before the bounds', () => {
    const strict = policy({profile: 'observe', maxWritesPerFinding: 0})
    expect(checkWrite(strict, scope, tool, {part_id: 'P-000002', reason: 'r'}, small, noWrites)).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('permission profile'),
    })
    expect(
      checkWrite({...strict, profile: 'standard'}, scope, tool, {part_id: 'P-000002', reason: 'r'}, small, noWrites),
    ).toMatchObject({allowed: false, reason: expect.stringContaining('outside')})
  })
})

describe('scopeOf: what a finding may touch', () => {
  it('a part finding covers the part, all its transactions and reservations, and no remap target', async () => {
    const inventory = buildInventory()
      .part({id: 'P-000001', sku: 'BLT-10001', on_hand: 12})
      .part({id: 'P-000002', sku: 'NUT-20001', on_hand: 0})
      .transaction({id: 'T-0000001', part_id: 'P-000001', qty: 10})
      .transaction({id: 'T-0000002', part_id: 'P-000001', qty: 5, status: 'pending'})
      .transaction({id: 'T-0000003', part_id: 'P-000002', qty: 0})
      .reservation({id: 'R-000001', part_id: 'P-000001', qty: 1, order_ref: 'SO-2026-0000001/1'})
      .reservation({id: 'R-000002', part_id: 'P-000002', qty: 1, order_ref: 'SO-2026-0000002/1'})
      .open()
    const [finding] = await inventory.detect(['ledger_mismatch'])
    expect(finding.id).toBe('ledger_mismatch:P-000001')
    expect(await scopeOf(inventory, finding)).toEqual({
      partIds: new Set(['P-000001']),
      txnIds: new Set(['T-0000001', 'T-0000002']),
      reservationIds: new Set(['R-000001']),
      remapTargets: new Map(),
    })
  })

  it('an orphan whose SKU is an unambiguous alias gets that part as its one remap target', async () => {
    const inventory = buildInventory()
      .part({id: 'P-000001', sku: 'BLT-10001'})
      .alias('LEG-BLT10001', 'P-000001')
      .transaction({id: 'T-0000001', part_id: 'P-999999', sku: 'LEG-BLT10001', qty: 0})
      .open()
    const [finding] = await inventory.detect(['orphan_transaction'])
    const found = await scopeOf(inventory, finding)
    expect(found).toEqual({
      partIds: new Set(['P-000001']),
      txnIds: new Set(['T-0000001']),
      reservationIds: new Set(),
      remapTargets: new Map([['T-0000001', 'P-000001']]),
    })
    expect(
      checkWrite(
        DEFAULT_POLICY,
        found,
        'remap_transaction_part',
        {txn_id: 'T-0000001', part_id: 'P-000001', reason: 'alias'},
        small,
        noWrites,
      ),
    ).toEqual({allowed: true, needsApproval: false})
  })

  it('an orphan whose SKU matches two parts gets no remap target', async () => {
    const inventory = buildInventory()
      .part({id: 'P-000001', sku: 'BLT-10001'})
      .part({id: 'P-000002', sku: 'BLT10001'})
      .transaction({id: 'T-0000001', part_id: 'P-999999', sku: 'blt-10001', qty: 0})
      .open()
    const [finding] = await inventory.detect(['orphan_transaction'])
    const found = await scopeOf(inventory, finding)
    expect(found.remapTargets).toEqual(new Map())
    expect(found.partIds).toEqual(new Set())
    for (const target of ['P-000001', 'P-000002']) {
      expect(
        checkWrite(
          DEFAULT_POLICY,
          found,
          'remap_transaction_part',
          {txn_id: 'T-0000001', part_id: target, reason: 'guess'},
          small,
          noWrites,
        ).allowed,
      ).toBe(false)
    }
  })

  it('a duplicate posting covers every posting of its (source, external_ref)', async () => {
    const inventory = buildInventory()
      .part({id: 'P-000001', sku: 'BLT-10001', on_hand: 20})
      .transaction({id: 'T-0000001', part_id: 'P-000001', qty: 10, external_ref: 'ASN-2026-0000001/1', created_at: 1})
      .transaction({id: 'T-0000002', part_id: 'P-000001', qty: 10, external_ref: 'ASN-2026-0000001/1', created_at: 2})
      .transaction({id: 'T-0000003', part_id: 'P-000001', qty: 0, external_ref: 'ASN-2026-0000002/1', created_at: 3})
      .open()
    const [finding] = await inventory.detect(['duplicate_posting'])
    expect(finding.id).toBe('duplicate_posting:T-0000002')
    const found = await scopeOf(inventory, finding)
    expect(found.txnIds).toEqual(new Set(['T-0000001', 'T-0000002']))
    expect(found.partIds).toEqual(new Set(['P-000001']))
  })
})
