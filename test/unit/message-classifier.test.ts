import {describe, expect, it} from 'vitest'

import {classifyMessage, unitEvidence, type MessageClass} from '../../src/engines/message-classifier.js'
import {phrasingsOf, type EventKind} from '../../src/simulate/phrasings.js'

/** Messages as integration layers write them, with the level they come with. */
const representative: Array<[MessageClass, string, string]> = [
  ['transient', 'error', 'WMS timeout after 30000 ms while posting ASN-2026-0000001/2; will retry'],
  ['transient', 'error', '503 Service Unavailable from ERP gateway while posting SO-2026-0000123/1'],
  [
    'transient',
    'error',
    'deadlock detected while updating stock for BLT-10001; transaction rolled back, retry scheduled',
  ],
  ['transient', 'warn', 'connection reset by peer (erp-sync) during TR-2026-0000004/1'],
  ['transient', 'warn', 'warehouse API rate limited us (HTTP 429) on SO-2026-0000123/1; backing off'],
  ['unknown_sku', 'error', "SKU 'LEG-BLT10001' not found in item master"],
  ['unknown_sku', 'error', 'item lookup failed: no part with SKU LEG-BLT10001'],
  ['unknown_sku', 'error', 'material LEG-BLT10001 does not exist in this plant'],
  ['bad_uom', 'error', "unit of measure 'cse' not recognised for BLT-10001"],
  ['bad_uom', 'error', 'invalid UoM cse on ASN-2026-0000001/2'],
  ['bad_uom', 'error', "cannot convert quantity: unknown unit 'cse'"],
  ['bad_uom', 'error', 'measurement unit cse is not configured for this item'],
  ['redelivery', 'warn', 'webhook for SO-2026-0000123/1 redelivered (attempt 2); consumer processed it again'],
  ['redelivery', 'warn', 'at-least-once delivery: message for SO-2026-0000123/1 received twice'],
  ['redelivery', 'warn', 'the same notification for SO-2026-0000123/1 arrived a second time'],
  ['job_rerun', 'warn', 'nightly import job ran twice; batch containing SO-2026-0000123/1 re-imported'],
  ['job_rerun', 'warn', 'ERP sync batch B-48213 replayed after restart, SO-2026-0000123/1 posted again'],
  ['job_rerun', 'warn', 'scheduler retriggered the import for SO-2026-0000123/1 after a crash'],
  ['invoiced', 'info', 'invoice INV-2026-48213 issued for SO-2026-0000123/1 (second shipment)'],
  ['invoiced', 'info', 'shipment confirmed for SO-2026-0000123/1: carrier label X123-45 printed and dispatched'],
  ['invoiced', 'info', 'customer was charged for SO-2026-0000123/1 again'],
  ['uom_evidence', 'info', 'ASN ASN-2026-0000001/2 line counted 24 EA at dock'],
  ['uom_evidence', 'info', 'source document ASN-2026-0000001/2: quantity 24 each (each count)'],
  ['uom_evidence', 'info', '24 pcs scanned at goods-in for ASN-2026-0000001/2'],
  ['unrecognized', 'error', 'rejected by WMS: lot L-48213 is on quality hold'],
  ['unrecognized', 'error', 'retry 5/5 failed: validation error E-48213'],
  ['unrecognized', 'warn', 'serial number SN-48213 already consumed'],
  ['info', 'info', 'synced SO-2026-0000123/1 to ERP'],
  ['info', 'info', 'SO-2026-0000123/1 posted from ecommerce (3 EA)'],
  ['info', 'info', 'received ASN-2026-0000001/2 from wms'],
]

describe('classifyMessage', () => {
  it.each(representative)('%s: [%s] %s', (expected, level, message) => {
    expect(classifyMessage(message, level)).toBe(expected)
  })

  it('is case-insensitive', () => {
    expect(classifyMessage('SKU LEG-1 NOT FOUND IN ITEM MASTER', 'error')).toBe('unknown_sku')
    expect(classifyMessage('Gateway Timeout', 'error')).toBe('transient')
  })

  it('says unrecognized for an error it cannot place, and info for a harmless note', () => {
    expect(classifyMessage('posting blocked: period closed for cost center X123-45', 'error')).toBe('unrecognized')
    expect(classifyMessage('posting blocked: period closed for cost center X123-45', 'info')).toBe('info')
  })

  it('puts invoiced first: an invoiced duplicate must escalate even when the message also says it was redelivered', () => {
    expect(
      classifyMessage('webhook for SO-2026-0000123/1 redelivered; invoice INV-2026-1 already issued', 'warn'),
    ).toBe('invoiced')
  })

  /*
   * Every phrasing the simulator writes, train and held-out, filled as the simulator fills it,
   * lands in the class of its kind: otherwise the rules playbook misreads its own data.
   */
  const kinds: EventKind[] = [
    'transient',
    'unknown_sku',
    'bad_uom',
    'uom_evidence',
    'redelivery',
    'job_rerun',
    'invoiced',
    'unrecognized',
    'info',
  ]
  const filled = kinds.flatMap((kind) =>
    (['train', 'heldout'] as const).flatMap((set) =>
      phrasingsOf(kind, set).map((template) => {
        const text = template
          .replaceAll('{ref}', 'SO-2026-0000123/1')
          .replaceAll('{sku}', 'LEG-BLT10001')
          .replaceAll('{uom}', 'cse')
          .replaceAll('{qty}', '24')
          .replaceAll('{source}', 'wms')
          .replaceAll('{n}', '48213')
          .replaceAll('{code}', 'X123-45')
        // uom_evidence states a count in a real unit; bad_uom names a misspelt one.
        return [kind, set, kind === 'uom_evidence' ? text.replace('cse', 'EA') : text] as const
      }),
    ),
  )

  it.each(filled)('simulator phrasing of %s (%s): %s', (kind, _set, text) => {
    const level =
      kind === 'unrecognized'
        ? 'error'
        : kind === 'info' || kind === 'uom_evidence' || kind === 'invoiced'
          ? 'info'
          : 'warn'
    expect(classifyMessage(text, level)).toBe(kind)
  })
})

describe('unitEvidence', () => {
  it.each([
    ['ASN ASN-2026-0000001/2 line counted 24 EA at dock', {qty: 24, uom: 'EA'}],
    ['source document SO-2026-0000123/1: quantity 5 each (each count)', {qty: 5, uom: 'EA'}],
    ['packing slip SO-2026-0000123/1: 3 case picked', {qty: 3, uom: 'CS'}],
    ['12 pcs scanned at goods-in for ASN-2026-0000001/2', {qty: 12, uom: 'EA'}],
    ['counted 2 Box on receipt', {qty: 2, uom: 'BX'}],
    ['quantity 40 kgs in the source document', {qty: 40, uom: 'KG'}],
  ])('%s → %o', (message, expected) => {
    expect(unitEvidence(message)).toEqual(expected)
  })

  it('skips numbers that are not followed by a unit', () => {
    expect(unitEvidence('ASN ASN-2026-0000001/2 line 3 counted 24 EA')).toEqual({qty: 24, uom: 'EA'})
  })

  it('needs a count in the source document, not any quantity with a unit', () => {
    expect(unitEvidence('SO-2026-0000123/1 posted from ecommerce (3 EA)')).toBeUndefined()
    expect(unitEvidence('received 24 EA')).toBeUndefined()
  })

  it('needs a unit it knows', () => {
    expect(unitEvidence('counted 24 widgets at dock')).toBeUndefined()
    expect(unitEvidence('counted at dock')).toBeUndefined()
  })
})
