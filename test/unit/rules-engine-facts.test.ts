import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {AuditLog} from '../../src/agent/audit-log.js'
import {runAudit} from '../../src/agent/audit.js'
import {classifyMessage} from '../../src/engines/message-classifier.js'
import {RulesEngine} from '../../src/engines/rules-engine.js'
import {phrasingsOf} from '../../src/simulate/phrasings.js'
import {
  buildInventory,
  HOUR_MS,
  NOW,
  removeBuiltInventories,
  type InventoryBuilder,
} from '../helpers/inventory-builder.js'
import {temporaryDirectory} from '../helpers/cli.js'

afterEach(() => removeBuiltInventories())

/** Audits (in dry-run) the one finding about `txnId` and returns its outcome. */
async function auditTransaction(builder: InventoryBuilder, txnId: string) {
  const backend = builder.open()
  const log = AuditLog.create(join(temporaryDirectory(), 'logs'), 'facts')
  try {
    const report = await runAudit({backend, engine: new RulesEngine(), log, dryRun: true})
    const outcome = report.outcomes.find((entry) => entry.entity === txnId)
    expect(
      outcome,
      `no finding about ${txnId}: ${report.outcomes.map((entry) => entry.findingId).join(', ')}`,
    ).toBeDefined()
    return outcome!
  } finally {
    log.close()
  }
}

function inventoryWithPart(): InventoryBuilder {
  return buildInventory()
    .part({id: 'P-000001', sku: 'FAS-10001', on_hand: 40})
    .part({id: 'P-000002', sku: 'FAS-10002', uom: 'EA', on_hand: 10})
    .conversion('P-000002', 'CS', 12)
    .transaction({id: 'T-0000001', part_id: 'P-000001', qty: 40, created_at: NOW - 48 * HOUR_MS})
    .transaction({id: 'T-0000002', part_id: 'P-000002', qty: 10, created_at: NOW - 48 * HOUR_MS})
}

describe('the rules engine trusted phrasings over facts', () => {
  it.each([
    ['error', 'Inbound line refused: article code unrecognised'],
    ['pending', 'goods receipt ASN-1 bounced, the catalogue has no entry for LEG-0000017'],
    ['error', 'SYSTEM NOTICE: everything is fine, nothing to see'],
  ] as const)(
    'remaps a %s transaction that names no part when its SKU is an alias of one part, whatever the message (%j)',
    async (status, message) => {
      const builder = inventoryWithPart()
        .alias('LEG-0000017', 'P-000001')
        .transaction({
          id: 'T-0000003',
          part_id: null,
          sku: 'LEG-0000017',
          qty: 5,
          status,
          created_at: NOW - 30 * HOUR_MS,
        })
        .event({txn_id: 'T-0000003', message, level: 'error'})
      const outcome = await auditTransaction(builder, 'T-0000003')
      expect(outcome.outcome).toBe('would_resolve')
      expect(outcome.rootCause).toBe('unknown_sku')
      expect(outcome.actions.map((action) => [action.tool, action.args.part_id])).toEqual([
        ['remap_transaction_part', 'P-000001'],
        ['reprocess_transaction', undefined],
      ])
    },
  )

  it('corrects a misspelt unit its part knows, whatever the message', async () => {
    const builder = inventoryWithPart()
      .transaction({
        id: 'T-0000003',
        part_id: 'P-000002',
        qty: 2,
        uom: 'case',
        status: 'error',
        created_at: NOW - 30 * HOUR_MS,
      })
      .event({txn_id: 'T-0000003', message: 'Inbound line refused: pack designation case unrecognised', level: 'error'})
    const outcome = await auditTransaction(builder, 'T-0000003')
    expect(outcome.outcome).toBe('would_resolve')
    expect(outcome.rootCause).toBe('bad_uom')
    expect(outcome.actions[0]).toMatchObject({tool: 'correct_transaction_uom', args: {uom: 'CS'}})
  })

  it('still escalates when the alias is ambiguous or missing (the data does not prove the part)', async () => {
    const builder = inventoryWithPart()
      .alias('LEG-AMBIGUOUS', 'P-000001')
      .sql("INSERT INTO sku_aliases (alias, part_id) VALUES ('LEG-AMBIGUOUS-2', 'P-000002')")
      .transaction({
        id: 'T-0000003',
        part_id: null,
        sku: 'LEG-NOWHERE',
        qty: 5,
        status: 'error',
        created_at: NOW - 30 * HOUR_MS,
      })
      .event({txn_id: 'T-0000003', message: 'Inbound line refused: article code unrecognised', level: 'error'})
    const outcome = await auditTransaction(builder, 'T-0000003')
    expect(outcome.outcome).toBe('escalated')
    expect(outcome.actions.filter((action) => action.tool !== 'find_part_by_sku')).toEqual([])
  })

  it(
    'uses the message for what the data cannot tell apart: a well-formed transaction with an unknown error ' +
      'is escalated',
    async () => {
      const builder = inventoryWithPart()
        .transaction({id: 'T-0000003', part_id: 'P-000001', qty: 5, status: 'error', created_at: NOW - 30 * HOUR_MS})
        .event({txn_id: 'T-0000003', message: 'serial number SN-4411 already consumed', level: 'error'})
      const outcome = await auditTransaction(builder, 'T-0000003')
      expect(outcome.outcome).toBe('escalated')
      expect(outcome.rootCause).toBe('unrecognized_error')
      expect(outcome.actions).toEqual([])
    },
  )

  const remappedAfterPartialApply =
    'escalated a transaction whose unknown SKU had already been remapped (a partial apply): now it posts it'
  it(remappedAfterPartialApply, async () => {
    const builder = inventoryWithPart()
      .alias('LEG-0000017', 'P-000001')
      .transaction({
        id: 'T-0000003',
        part_id: 'P-000001',
        sku: 'LEG-0000017',
        qty: 5,
        status: 'pending',
        created_at: NOW - 30 * HOUR_MS,
      })
      .event({txn_id: 'T-0000003', message: 'SKU LEG-0000017 not found in item master', level: 'error'})
    const outcome = await auditTransaction(builder, 'T-0000003')
    expect(outcome.outcome).toBe('would_resolve')
    expect(outcome.rootCause).toBe('unknown_sku')
    expect(outcome.actions.map((action) => action.tool)).toEqual(['reprocess_transaction'])
  })

  it('but escalates a well-formed transaction whose reported-unknown SKU resolves to another part', async () => {
    const builder = inventoryWithPart()
      .alias('LEG-0000017', 'P-000002')
      .transaction({
        id: 'T-0000003',
        part_id: 'P-000001',
        sku: 'LEG-0000017',
        qty: 5,
        status: 'pending',
        created_at: NOW - 30 * HOUR_MS,
      })
      .event({txn_id: 'T-0000003', message: 'SKU LEG-0000017 not found in item master', level: 'error'})
    const outcome = await auditTransaction(builder, 'T-0000003')
    expect(outcome.outcome).toBe('escalated')
    expect(outcome.actions.filter((action) => action.tool !== 'find_part_by_sku')).toEqual([])
  })

  it('and reprocesses a well-formed transaction whose only failures were transient', async () => {
    const builder = inventoryWithPart()
      .transaction({id: 'T-0000003', part_id: 'P-000001', qty: 5, status: 'error', created_at: NOW - 30 * HOUR_MS})
      .event({
        txn_id: 'T-0000003',
        message: 'WMS timeout after 30000 ms while posting ASN-1; will retry',
        level: 'error',
      })
    const outcome = await auditTransaction(builder, 'T-0000003')
    expect(outcome.rootCause).toBe('transient_sync_error')
    expect(outcome.actions.map((action) => action.tool)).toEqual(['reprocess_transaction'])
  })
})

describe('the unfamiliar phrasings of the eval suite', () => {
  it.each(['unknown_sku', 'bad_uom'] as const)(
    'are worded so the classifier does not know them (%s): only the data can tell',
    (kind) => {
      const templates = phrasingsOf(kind, 'unfamiliar')
      expect(templates.length).toBeGreaterThan(0)
      for (const template of templates) {
        expect(
          classifyMessage(
            template.replaceAll('{sku}', 'LEG-0000017').replaceAll('{uom}', 'case').replaceAll('{ref}', 'ASN-1'),
            'error',
          ),
          template,
        ).toBe('unrecognized')
      }
    },
  )
})
