import type {Random} from '../util/random.js'

/**
 * Free-text integration messages in several phrasings per kind. The "train" set is used for
 * the demo inventory and the playbook; the "heldout" set is only ever used by evaluation
 * suites, so a model must generalise rather than memorise wording.
 */
export type EventKind =
  | 'transient'
  | 'unknown_sku'
  | 'bad_uom'
  | 'uom_evidence'
  | 'redelivery'
  | 'job_rerun'
  | 'invoiced'
  | 'unrecognized'
  | 'info'
export type PhrasingSet = 'train' | 'heldout'

interface Phrasing {
  level: 'info' | 'warn' | 'error'
  text: string
}

const PHRASINGS: Record<EventKind, Record<PhrasingSet, Phrasing[]>> = {
  transient: {
    train: [
      {level: 'error', text: 'WMS timeout after 30000 ms while posting {ref}; will retry'},
      {level: 'error', text: '503 Service Unavailable from ERP gateway while posting {ref}'},
      {
        level: 'error',
        text: 'deadlock detected while updating stock for {sku}; transaction rolled back, retry scheduled',
      },
      {level: 'warn', text: 'connection reset by peer (erp-sync) during {ref}'},
    ],
    heldout: [
      {level: 'error', text: 'upstream gateway did not answer in time, {ref} left unposted'},
      {level: 'warn', text: 'warehouse API rate limited us (HTTP 429) on {ref}; backing off'},
    ],
  },
  unknown_sku: {
    train: [
      {level: 'error', text: "SKU '{sku}' not found in item master"},
      {level: 'error', text: 'item lookup failed: no part with SKU {sku}'},
      {level: 'error', text: 'unknown item code {sku} on line {ref}'},
    ],
    heldout: [{level: 'error', text: 'material {sku} does not exist in this plant'}],
  },
  bad_uom: {
    train: [
      {level: 'error', text: "unit of measure '{uom}' not recognised for {sku}"},
      {level: 'error', text: 'invalid UoM {uom} on {ref}'},
      {level: 'error', text: "cannot convert quantity: unknown unit '{uom}'"},
    ],
    heldout: [{level: 'error', text: 'measurement unit {uom} is not configured for this item'}],
  },
  uom_evidence: {
    train: [
      {level: 'info', text: 'source document {ref}: quantity {qty} {uom} (each count)'},
      {level: 'info', text: 'ASN {ref} line counted {qty} {uom} at dock'},
      {level: 'info', text: 'packing slip {ref}: {qty} {uom} picked'},
    ],
    heldout: [{level: 'info', text: '{qty} {uom} scanned at goods-in for {ref}'}],
  },
  redelivery: {
    train: [
      {level: 'warn', text: 'webhook for {ref} redelivered (attempt 2); consumer processed it again'},
      {level: 'warn', text: 'duplicate delivery of the event for {ref} detected after posting'},
      {level: 'warn', text: 'at-least-once delivery: message for {ref} received twice'},
    ],
    heldout: [{level: 'warn', text: 'the same notification for {ref} arrived a second time'}],
  },
  job_rerun: {
    train: [
      {level: 'warn', text: 'nightly import job ran twice; batch containing {ref} re-imported'},
      {level: 'warn', text: 'ERP sync batch B-{n} replayed after restart, {ref} posted again'},
    ],
    heldout: [{level: 'warn', text: 'scheduler retriggered the import for {ref} after a crash'}],
  },
  invoiced: {
    train: [
      {level: 'info', text: 'invoice INV-2026-{n} issued for {ref} (second shipment)'},
      {level: 'info', text: 'shipment confirmed for {ref}: carrier label {code} printed and dispatched'},
      {level: 'info', text: '{ref} billed to customer on invoice INV-2026-{n}'},
    ],
    heldout: [{level: 'info', text: 'customer was charged for {ref} again'}],
  },
  unrecognized: {
    train: [
      {level: 'error', text: 'rejected by WMS: lot L-{n} is on quality hold'},
      {level: 'error', text: 'retry 5/5 failed: validation error E-{n}'},
      {level: 'error', text: 'posting blocked: period closed for cost center {code}'},
      {level: 'error', text: 'unexpected response from ERP: {code}'},
    ],
    heldout: [{level: 'error', text: 'serial number SN-{n} already consumed'}],
  },
  info: {
    train: [
      {level: 'info', text: '{ref} posted from {source} ({qty} {uom})'},
      {level: 'info', text: 'synced {ref} to ERP'},
      {level: 'info', text: 'received {ref} from {source}'},
    ],
    heldout: [{level: 'info', text: '{ref} acknowledged by {source}'}],
  },
}

export interface PhrasingValues {
  ref?: string
  sku?: string
  uom?: string
  qty?: number
  source?: string
}

/** One message of the kind, its placeholders filled. */
export function phrase(random: Random, kind: EventKind, set: PhrasingSet, values: PhrasingValues): Phrasing {
  const provided = (name: keyof PhrasingValues) => values[name] !== undefined
  const usable = PHRASINGS[kind][set].filter((candidate) =>
    (['ref', 'sku', 'uom', 'qty', 'source'] as const).every(
      (name) => !candidate.text.includes(`{${name}}`) || provided(name),
    ),
  )
  const template = random.pick(usable.length > 0 ? usable : PHRASINGS[kind][set])
  const text = template.text
    .replaceAll('{ref}', values.ref ?? '')
    .replaceAll('{sku}', values.sku ?? '')
    .replaceAll('{uom}', values.uom ?? '')
    .replaceAll('{qty}', String(values.qty ?? ''))
    .replaceAll('{source}', values.source ?? '')
    .replaceAll('{n}', String(random.int(1000, 99999)))
    .replaceAll('{code}', `X${random.int(100, 999)}-${random.int(10, 99)}`)
  return {level: template.level, text}
}

export function phrasingsOf(kind: EventKind, set: PhrasingSet): readonly string[] {
  return PHRASINGS[kind][set].map((phrasing) => phrasing.text)
}
