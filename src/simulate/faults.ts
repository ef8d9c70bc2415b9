import {ROOT_CAUSES, type RootCauseInfo, type RuleName} from '../tools/catalogue.js'
import type {WriteToolName} from '../tools/tools.js'
import {UNIT_SPELLINGS} from '../inventory/units.js'
import type {Random} from '../util/random.js'
import {HOUR_MS, postMovement, type SimPart, type SimulationWriter} from './generate.js'

/** One write of a gold fix: a call of a write tool, with arguments valid for its schema. */
export interface GoldCall {
  tool: WriteToolName
  args: Record<string, unknown>
}

/** The ground truth of one injected fault. `entity` is exactly what `detect` reports for it. */
export interface InjectedFault {
  id: string
  rule: RuleName
  rootCause: string
  entity: string
  expected: 'fix' | 'escalate'
  /** Other findings the same fault legitimately raises (a duplicated issue is also a duplicate posting). */
  alsoDetected: Array<{rule: RuleName; entity: string}>
  /** The part the fault was shaped around (for an orphan: the part its SKU really means). */
  part?: string
  /**
   * The writes a correct operator makes, in order; applied to a copy of the inventory they give
   * the gold end state. Empty when the fault must be escalated: nothing may be written for it.
   */
  goldFix?: GoldCall[]
}

function call(tool: WriteToolName, args: Record<string, unknown>): GoldCall {
  return {tool, args}
}

/** Which variants to inject: every root cause once per round, in a seeded order. */
export function planFaults(random: Random, count: number): RootCauseInfo[] {
  const plan: RootCauseInfo[] = []
  while (plan.length < count) plan.push(...random.shuffle([...ROOT_CAUSES]).slice(0, count - plan.length))
  return plan
}

const MINUTE = 60000

/** Makes sure the part holds at least `minimum` so a fault can be shaped around real stock. */
function ensureStock(writer: SimulationWriter, part: SimPart, minimum: number): void {
  if (part.onHand < minimum)
    postMovement(writer, part, 'receipt', minimum - part.onHand + writer.random.int(5, 40), writer.clock - 5 * HOUR_MS)
}

/** A pack unit the part converts from, adding a case of 12 when it has none. */
function packOf(writer: SimulationWriter, part: SimPart): [string, number] {
  const pack = part.packs.find(([, factor]) => factor >= 6 && factor <= 100)
  if (pack) return pack
  const code = part.packs.some(([uom]) => uom === 'CS') ? 'PK' : 'CS'
  writer.db.run('INSERT INTO uom_conversions (part_id, uom, factor) VALUES (?, ?, ?)', part.id, code, 12)
  part.packs.push([code, 12])
  return [code, 12]
}

/**
 * A spelling of one of the part's own units that is not itself a code the part knows, with a
 * quantity that is plausible in that unit (a few cases, not hundreds).
 */
function misspelledUnit(random: Random, part: SimPart): {uom: string; qty: number; code: string} {
  const units: Array<[string, number]> = [[part.uom, 1], ...part.packs]
  const known = new Set(units.map(([uom]) => uom))
  const [code, factor] = random.pick(units)
  const spellings = (UNIT_SPELLINGS[code] ?? [code.toLowerCase()]).filter((spelling) => !known.has(spelling))
  const qty =
    factor === 1 ? random.int(part.lot[0], part.lot[1]) : random.int(1, Math.max(1, Math.floor(part.lot[1] / factor)))
  return {uom: random.pick(spellings), qty, code}
}

/** Keeps fault parts to ordinary stock levels, so every gold fix stays far below approval bounds. */
function capStock(writer: SimulationWriter, part: SimPart, maximum: number): void {
  if (part.onHand > maximum)
    postMovement(
      writer,
      part,
      'issue',
      -(part.onHand - writer.random.int(Math.floor(maximum / 5), maximum)),
      writer.clock - 6 * HOUR_MS,
      {source: 'erp'},
    )
}

/** A pack unit the part has no conversion for. */
function unconvertedPack(part: SimPart, preferred: string[]): string {
  const known = new Set([part.uom, ...part.packs.map(([uom]) => uom)])
  return preferred.find((uom) => !known.has(uom)) ?? 'PLT2'
}

type Injector = (writer: SimulationWriter, part: SimPart, all: SimPart[], fault: InjectedFault) => void

const INJECTORS: Record<string, Injector> = {
  'negative_on_hand/receipt_stuck_pending'(writer, part, _all, fault) {
    const random = writer.random
    const short = random.int(3, 20)
    postMovement(writer, part, 'issue', -(part.onHand + short), writer.clock - 3 * HOUR_MS, {source: 'ecommerce'})
    const ref = writer.ref('ASN')
    const receipt = writer.insertTransaction({
      partId: part.id,
      sku: part.sku,
      kind: 'receipt',
      qty: short + random.int(5, 50),
      uom: part.uom,
      status: 'pending',
      source: 'wms',
      ref,
      createdAt: writer.clock - random.int(20, 90) * MINUTE,
    })
    writer.event(receipt, writer.clock - 15 * MINUTE, 'transient', {ref, sku: part.sku})
    fault.goldFix = [
      call('reprocess_transaction', {txn_id: receipt, reason: 'receipt stuck after a transient sync failure'}),
    ]
  },
  'negative_on_hand/duplicate_issue_posting'(writer, part, _all, fault) {
    const random = writer.random
    ensureStock(writer, part, 10)
    const qty = random.int(Math.floor(part.onHand / 2) + 1, part.onHand)
    const ref = writer.ref('SO')
    const at = writer.clock - random.int(4, 48) * HOUR_MS
    postMovement(writer, part, 'issue', -qty, at, {ref, source: 'ecommerce', info: false})
    const duplicate = postMovement(writer, part, 'issue', -qty, at + random.int(1, 10) * MINUTE, {
      ref,
      source: 'ecommerce',
      info: false,
    })
    writer.event(duplicate, at + 11 * MINUTE, 'redelivery', {ref})
    fault.alsoDetected.push({rule: 'duplicate_posting', entity: duplicate})
    fault.goldFix = [call('void_transaction', {txn_id: duplicate, reason: `duplicate posting of ${ref}`})]
  },
  'negative_on_hand/issue_uom_error'(writer, part, _all, fault) {
    const random = writer.random
    ensureStock(writer, part, 4)
    const [pack, factor] = packOf(writer, part)
    const qty = random.int(
      Math.floor(part.onHand / factor) + 1,
      Math.max(Math.floor(part.onHand / factor) + 1, Math.min(part.onHand, 20)),
    )
    const ref = writer.ref('SO')
    const at = writer.clock - random.int(4, 48) * HOUR_MS
    const id = writer.insertTransaction({
      partId: part.id,
      sku: part.sku,
      kind: 'issue',
      qty: -qty,
      uom: pack,
      status: 'posted',
      source: 'ecommerce',
      ref,
      createdAt: at,
    })
    part.onHand -= qty * factor
    writer.event(id, at + MINUTE, 'uom_evidence', {ref, qty, uom: part.uom})
    fault.goldFix = [
      call('correct_transaction_uom', {
        txn_id: id,
        uom: part.uom,
        reason: `source document counted ${qty} ${part.uom}`,
      }),
    ]
  },
  'negative_on_hand/unexplained_shortage'(writer, part) {
    postMovement(
      writer,
      part,
      'issue',
      -(part.onHand + writer.random.int(2, 30)),
      writer.clock - writer.random.int(4, 48) * HOUR_MS,
      {source: 'erp'},
    )
  },
  'ledger_mismatch/cache_drift'(writer, part, _all, fault) {
    const drift = writer.random.int(1, 40)
    part.onHand += writer.random.bool(0.5) || part.onHand < drift ? drift : -drift
    fault.goldFix = [
      call('recompute_on_hand', {part_id: part.id, reason: 'on_hand cache drifted from a plausible ledger'}),
    ]
  },
  'ledger_mismatch/implausible_ledger'(writer, part) {
    const random = writer.random
    const at = writer.clock - random.int(4, 48) * HOUR_MS
    const delta = random.bool(0.5) ? -(part.onHand + random.int(200, 900)) : random.int(250000, 900000)
    const before = part.onHand
    postMovement(writer, part, 'adjustment', delta, at, {source: 'manual'})
    part.onHand = before // the cache never saw the posting
  },
  'stuck_pending/transient_sync_error': (writer, part, _all, fault) =>
    unpostedWithEvents(writer, part, fault, 'pending', 'transient'),
  'stuck_pending/unknown_sku': (writer, part, _all, fault) =>
    unpostedWithEvents(writer, part, fault, 'pending', 'unknown_sku'),
  'stuck_pending/bad_uom': (writer, part, _all, fault) => unpostedWithEvents(writer, part, fault, 'pending', 'bad_uom'),
  'stuck_pending/unrecognized_error': (writer, part, _all, fault) =>
    unpostedWithEvents(writer, part, fault, 'pending', 'unrecognized'),
  'sync_error/transient_sync_error': (writer, part, _all, fault) =>
    unpostedWithEvents(writer, part, fault, 'error', 'transient'),
  'sync_error/unknown_sku': (writer, part, _all, fault) =>
    unpostedWithEvents(writer, part, fault, 'error', 'unknown_sku'),
  'sync_error/bad_uom': (writer, part, _all, fault) => unpostedWithEvents(writer, part, fault, 'error', 'bad_uom'),
  'sync_error/unrecognized_error': (writer, part, _all, fault) =>
    unpostedWithEvents(writer, part, fault, 'error', 'unrecognized'),
  'duplicate_posting/webhook_redelivery': (writer, part, _all, fault) =>
    duplicatePosting(writer, part, fault, 'redelivery'),
  'duplicate_posting/job_ran_twice': (writer, part, _all, fault) => duplicatePosting(writer, part, fault, 'job_rerun'),
  'duplicate_posting/already_invoiced': (writer, part, _all, fault) =>
    duplicatePosting(writer, part, fault, 'invoiced'),
  'orphan_transaction/renamed_sku'(writer, part, _all, fault) {
    const oldSku = `OLD-${part.sku.split('-')[0]}${part.id.slice(2)}`
    writer.db.run('INSERT INTO sku_aliases (alias, part_id) VALUES (?, ?)', oldSku, part.id)
    fault.entity = orphanPosting(writer, part, oldSku)
    fault.goldFix = [
      call('remap_transaction_part', {
        txn_id: fault.entity,
        part_id: part.id,
        reason: `SKU "${oldSku}" is an alias of ${part.id}`,
      }),
    ]
  },
  'orphan_transaction/alias_missing'(writer, part, _all, fault) {
    fault.entity = orphanPosting(writer, part, `UNK-${writer.random.int(100000, 999999)}`)
  },
  'orphan_transaction/ambiguous_alias'(writer, part, all, fault) {
    const other =
      all.find((candidate) => candidate.id !== part.id && writer.random.bool(0.5)) ??
      all.find((candidate) => candidate.id !== part.id)!
    const alias = other.sku.replace('-', '').toLowerCase()
    writer.db.run('INSERT OR IGNORE INTO sku_aliases (alias, part_id) VALUES (?, ?)', alias, part.id)
    fault.entity = orphanPosting(writer, part, alias)
  },
  'reservation_drift/reserved_cache_drift'(writer, part, _all, fault) {
    const random = writer.random
    ensureStock(writer, part, 10)
    const qty = random.int(1, Math.floor(part.onHand / 3))
    writer.reservation(part.id, qty, writer.ref('SO'), 'active', writer.clock - random.int(1, 48) * HOUR_MS)
    const drift = random.int(1, Math.max(1, Math.floor(part.onHand / 3)))
    part.reserved = qty + (random.bool(0.5) ? drift : -Math.min(drift, qty))
    if (part.reserved === qty) part.reserved += 1
    fault.goldFix = [
      call('recompute_reserved', {part_id: part.id, reason: 'reserved cache drifted from active reservations'}),
    ]
  },
  'reservation_drift/stale_reservation'(writer, part, _all, fault) {
    const random = writer.random
    ensureStock(writer, part, 12)
    const legit = Math.floor(part.onHand / 4)
    const room = part.onHand - legit
    const shipped = room - random.int(0, Math.max(0, Math.ceil(room / 2) - 2))
    if (legit > 0)
      writer.reservation(part.id, legit, writer.ref('SO'), 'active', writer.clock - random.int(1, 24) * HOUR_MS)
    const ref = writer.ref('SO')
    const at = writer.clock - random.int(30, 200) * HOUR_MS
    const stale = writer.reservation(part.id, shipped, ref, 'active', at - HOUR_MS)
    postMovement(writer, part, 'issue', -shipped, at, {ref, source: 'ecommerce'})
    part.reserved = legit + shipped
    fault.goldFix = [call('release_reservation', {reservation_id: stale, reason: `order line ${ref} already shipped`})]
  },
  'reservation_drift/picked_stock'(writer, part) {
    const random = writer.random
    ensureStock(writer, part, 6)
    const first = random.int(1, part.onHand)
    const second = part.onHand - first + random.int(1, 20)
    writer.reservation(part.id, first, writer.ref('SO'), 'active', writer.clock - random.int(1, 24) * HOUR_MS)
    writer.reservation(part.id, second, writer.ref('SO'), 'active', writer.clock - random.int(1, 24) * HOUR_MS)
    part.reserved = first + second
  },
  'uom_mismatch/uom_label_variant'(writer, part, _all, fault) {
    const {uom, qty, code} = misspelledUnit(writer.random, part)
    fault.entity = unconvertiblePosting(writer, part, uom, 'info', qty)
    fault.goldFix = [
      call('correct_transaction_uom', {txn_id: fault.entity, uom: code, reason: `"${uom}" is a spelling of ${code}`}),
    ]
  },
  'uom_mismatch/case_vs_each'(writer, part, _all, fault) {
    fault.entity = unconvertiblePosting(writer, part, unconvertedPack(part, ['CS', 'BX', 'PK']), 'uom_evidence')
    fault.goldFix = [
      call('correct_transaction_uom', {
        txn_id: fault.entity,
        uom: part.uom,
        reason: `source document counted eaches (${part.uom})`,
      }),
    ]
  },
  'uom_mismatch/unknown_factor'(writer, part, _all, fault) {
    fault.entity = unconvertiblePosting(writer, part, unconvertedPack(part, ['PLT', 'CRT', 'TOTE']), 'info')
  },
}

function unpostedWithEvents(
  writer: SimulationWriter,
  part: SimPart,
  fault: InjectedFault,
  status: 'pending' | 'error',
  kind: 'transient' | 'unknown_sku' | 'bad_uom' | 'unrecognized',
): void {
  const random = writer.random
  let sku = part.sku
  let partId: string | null = part.id
  let uom = part.uom
  let qty = random.int(part.lot[0], part.lot[1])
  if (kind === 'unknown_sku') {
    sku = `LEG-${part.id.slice(2)}${random.int(10, 99)}`
    partId = null
    writer.db.run('INSERT INTO sku_aliases (alias, part_id) VALUES (?, ?)', sku, part.id)
  }
  let code = part.uom
  if (kind === 'bad_uom') ({uom, qty, code} = misspelledUnit(random, part))
  const ref = writer.ref('ASN')
  const createdAt = writer.clock - random.int(3, 72) * HOUR_MS
  const id = writer.insertTransaction({partId, sku, kind: 'receipt', qty, uom, status, source: 'wms', ref, createdAt})
  const attempts = random.int(1, 3)
  for (let attempt = 0; attempt < attempts; attempt++)
    writer.event(id, createdAt + (attempt + 1) * 10 * MINUTE, kind, {ref, sku, uom})
  fault.entity = id
  const reprocess = call('reprocess_transaction', {
    txn_id: id,
    reason: kind === 'transient' ? 'transient integration failure' : 'the cause of the failure is corrected',
  })
  if (kind === 'transient') fault.goldFix = [reprocess]
  if (kind === 'unknown_sku')
    fault.goldFix = [
      call('remap_transaction_part', {txn_id: id, part_id: part.id, reason: `SKU "${sku}" is an alias of ${part.id}`}),
      reprocess,
    ]
  if (kind === 'bad_uom')
    fault.goldFix = [
      call('correct_transaction_uom', {txn_id: id, uom: code, reason: `"${uom}" is a spelling of ${code}`}),
      reprocess,
    ]
}

function duplicatePosting(
  writer: SimulationWriter,
  part: SimPart,
  fault: InjectedFault,
  kind: 'redelivery' | 'job_rerun' | 'invoiced',
): void {
  const random = writer.random
  ensureStock(writer, part, 12)
  const outbound = kind === 'invoiced' || random.bool(0.5)
  const qty = random.int(1, Math.max(1, Math.floor(part.onHand / 3)))
  const source = kind === 'job_rerun' ? 'erp' : outbound ? 'ecommerce' : 'wms'
  const txnKind = outbound ? 'issue' : 'receipt'
  const ref = writer.ref(outbound ? (source === 'erp' ? 'WO' : 'SO') : 'ASN')
  const at = writer.clock - random.int(4, 96) * HOUR_MS
  const delta = outbound ? -qty : qty
  postMovement(writer, part, txnKind, delta, at, {ref, source, info: false})
  const duplicate = postMovement(writer, part, txnKind, delta, at + random.int(1, 30) * MINUTE, {
    ref,
    source,
    info: false,
  })
  writer.event(duplicate, at + 31 * MINUTE, kind, {ref})
  fault.entity = duplicate
  if (kind !== 'invoiced')
    fault.goldFix = [call('void_transaction', {txn_id: duplicate, reason: `duplicate posting of ${ref}`})]
}

function orphanPosting(writer: SimulationWriter, part: SimPart, sku: string): string {
  const ref = writer.ref('ASN')
  const at = writer.clock - writer.random.int(4, 96) * HOUR_MS
  const id = writer.insertTransaction({
    partId: `P-9${String(writer.random.int(0, 99999)).padStart(5, '0')}`,
    sku,
    kind: 'receipt',
    qty: writer.random.int(part.lot[0], part.lot[1]),
    uom: part.uom,
    status: 'posted',
    source: 'wms',
    ref,
    createdAt: at,
  })
  writer.event(id, at + MINUTE, 'info', {ref, source: 'wms'})
  return id
}

function unconvertiblePosting(
  writer: SimulationWriter,
  part: SimPart,
  uom: string,
  kind: 'info' | 'uom_evidence',
  qty = writer.random.int(part.lot[0], part.lot[1]),
): string {
  const random = writer.random
  const ref = writer.ref('ASN')
  const at = writer.clock - random.int(4, 96) * HOUR_MS
  const id = writer.insertTransaction({
    partId: part.id,
    sku: part.sku,
    kind: 'receipt',
    qty,
    uom,
    status: 'posted',
    source: 'wms',
    ref,
    createdAt: at,
  })
  writer.event(
    id,
    at + MINUTE,
    kind,
    kind === 'uom_evidence' ? {ref, qty, uom: part.uom} : {ref, source: 'wms', qty, uom},
  )
  return id
}

/** Injects one fault variant into its own part and returns the ground truth. */
export function injectFault(
  writer: SimulationWriter,
  variant: RootCauseInfo,
  part: SimPart,
  all: SimPart[],
  index: number,
): InjectedFault {
  const fault: InjectedFault = {
    id: `F-${String(index).padStart(3, '0')}`,
    rule: variant.rule,
    rootCause: variant.rootCause,
    entity: part.id,
    expected: variant.expected,
    alsoDetected: [],
    part: part.id,
  }
  capStock(writer, part, 1500)
  INJECTORS[`${variant.rule}/${variant.rootCause}`](writer, part, all, fault)
  writer.saveCaches(part)
  // A fault to escalate has no fix: its gold end state is the state it was injected in.
  fault.goldFix ??= []
  return fault
}
