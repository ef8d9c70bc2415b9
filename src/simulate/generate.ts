import {existsSync, mkdirSync, renameSync, rmSync, writeFileSync, accessSync, constants as fsConstants} from 'node:fs'
import {dirname, resolve} from 'node:path'

import {ConfigError, UserError} from '../errors.js'
import {SqliteConnection} from '../inventory/sqlite-connection.js'
import {INDEX_SQL, SCHEMA_SQL, SCHEMA_VERSION} from '../inventory/schema.js'
import {Random} from '../util/random.js'
import type {RootCauseInfo} from '../tools/catalogue.js'
import {PART_FAMILIES, type PartFamily} from './catalog.js'
import {injectFault, planFaults, type InjectedFault} from './faults.js'
import {plantHostileText} from './hostile-text.js'
import {phrase, type EventKind, type PhrasingSet} from './phrasings.js'

export const DAY_MS = 24 * 60 * 60 * 1000
export const HOUR_MS = 60 * 60 * 1000
/** The frozen "now" of simulated inventories: fixed so that the same seed gives the same data. */
export const DEFAULT_CLOCK = Date.UTC(2026, 0, 31, 12, 0, 0)

export interface InitOptions {
  path: string
  parts: number
  days: number
  faults: number
  seed: number
  force?: boolean
  /** Which phrasings integration messages use; held-out ones are for evaluation suites only. */
  phrasings?: PhrasingSet
  /**
   * Numbering starts after this for parts and reservations, and after ten times this for
   * transactions: held-out suites use ids no training inventory contains.
   */
  idBase?: number
  /** Exactly these faults, in this order, instead of a seeded plan; `faults` must equal their count. */
  variants?: readonly RootCauseInfo[]
  clock?: number
  /** Called as parts' histories are written (about every 5%), for progress on large inventories. */
  onProgress?: (done: number, total: number) => void
  /**
   * Plants prompt-injection text where a model reads inventory text: in the names of the faults'
   * parts and as integration messages on their transactions. Evaluation suites use it to check
   * that text from the inventory is treated as data.
   */
  hostileText?: boolean
}

export interface InitResult {
  db: string
  parts: number
  transactions: number
  faults: InjectedFault[]
}

export interface SimPart {
  id: string
  sku: string
  name: string
  uom: string
  packs: Array<[string, number]>
  lot: [number, number]
  onHand: number
  reserved: number
}

export interface TxnInput {
  partId: string | null
  sku: string
  kind: 'receipt' | 'issue' | 'adjustment' | 'transfer_in' | 'transfer_out' | 'return'
  qty: number
  uom: string
  status: 'pending' | 'posted' | 'error' | 'void'
  source: 'wms' | 'ecommerce' | 'erp' | 'manual'
  ref: string
  createdAt: number
}

/** A transaction row's values in column order (see SimulationRowSink.transaction). */
type TransactionRowValues = [
  string,
  string | null,
  string,
  string,
  number,
  string,
  string,
  string,
  string,
  number,
  number | null,
]

/**
 * Where the simulator's append-only rows (transactions, integration events, reservations) go
 * instead of SQLite: a bulk loader formats them as they come. The simulator never reads those
 * rows back, so the values are exactly what it would have inserted; events are numbered as
 * SQLite's rowid would number them (1, 2, …).
 */
export interface SimulationRowSink {
  /** id, part_id, sku, kind, qty, uom, status, source, external_ref, created_at, posted_at */
  transaction(row: TransactionRowValues): void
  event(row: [number, string, number, string, string]): void
  reservation(row: [string, string, number, string, string, number]): void
}

/** Writes rows of a simulated inventory: ids, references and events are numbered here. */
export class SimulationWriter {
  private txnCounter = 0
  private reservationCounter = 0
  private eventCounter = 0
  /** When set, append-only rows go here instead of into `db`. */
  sink: SimulationRowSink | undefined
  private readonly refCounters = new Map<string, number>()
  transactions = 0
  readonly db: SqliteConnection
  readonly random: Random
  readonly clock: number
  readonly phrasings: PhrasingSet

  constructor(db: SqliteConnection, random: Random, clock: number, phrasings: PhrasingSet, idBase = 0) {
    this.txnCounter = idBase * 10
    this.reservationCounter = idBase
    this.db = db
    this.random = random
    this.clock = clock
    this.phrasings = phrasings
  }

  /** A fresh document reference such as "SO-2026-0001234/1". */
  ref(prefix: 'ASN' | 'SO' | 'WO' | 'TR' | 'RMA' | 'CC'): string {
    const next = (this.refCounters.get(prefix) ?? 0) + 1
    this.refCounters.set(prefix, next)
    return `${prefix}-2026-${String(next).padStart(7, '0')}/${this.random.int(1, 4)}`
  }

  insertTransaction(input: TxnInput): string {
    this.txnCounter++
    this.transactions++
    const id = `T-${String(this.txnCounter).padStart(7, '0')}`
    if (this.sink) {
      const postedAt = input.status === 'posted' ? input.createdAt + this.random.int(1000, 120000) : null
      const {partId, sku, kind, qty, uom, status, source, ref, createdAt} = input
      this.sink.transaction([id, partId, sku, kind, qty, uom, status, source, ref, createdAt, postedAt])
      return id
    }
    this.db.run(
      'INSERT INTO transactions ' +
        '(id, part_id, sku, kind, qty, uom, status, source, external_ref, created_at, posted_at) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      id,
      input.partId,
      input.sku,
      input.kind,
      input.qty,
      input.uom,
      input.status,
      input.source,
      input.ref,
      input.createdAt,
      input.status === 'posted' ? input.createdAt + this.random.int(1000, 120000) : null,
    )
    return id
  }

  event(
    txnId: string,
    at: number,
    kind: EventKind,
    values: {ref?: string; sku?: string; uom?: string; qty?: number; source?: string},
  ): void {
    const message = phrase(this.random, kind, this.phrasings, values)
    if (this.sink) {
      this.sink.event([++this.eventCounter, txnId, at, message.level, message.text])
      return
    }
    this.db.run(
      'INSERT INTO integration_events (txn_id, at, level, message) VALUES (?, ?, ?, ?)',
      txnId,
      at,
      message.level,
      message.text,
    )
  }

  reservation(
    partId: string,
    qty: number,
    orderRef: string,
    status: 'active' | 'released' | 'fulfilled',
    createdAt: number,
  ): string {
    this.reservationCounter++
    const id = `R-${String(this.reservationCounter).padStart(6, '0')}`
    if (this.sink) {
      this.sink.reservation([id, partId, qty, orderRef, status, createdAt])
      return id
    }
    this.db.run(
      'INSERT INTO reservations (id, part_id, qty, order_ref, status, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      id,
      partId,
      qty,
      orderRef,
      status,
      createdAt,
    )
    return id
  }

  saveCaches(part: SimPart): void {
    this.db.run('UPDATE parts SET on_hand = ?, reserved = ? WHERE id = ?', part.onHand, part.reserved, part.id)
  }
}

const SOURCE_OF_KIND = {
  receipt: 'wms',
  issue: 'ecommerce',
  transfer_in: 'erp',
  transfer_out: 'erp',
  return: 'ecommerce',
  adjustment: 'manual',
} as const
const REF_OF_KIND = {
  receipt: 'ASN',
  issue: 'SO',
  transfer_in: 'TR',
  transfer_out: 'TR',
  return: 'RMA',
  adjustment: 'CC',
} as const

/** Most faults a number of parts can hold: every fault gets a part of its own. */
export function maxFaults(parts: number): number {
  return Math.floor(parts / 2)
}

/** Refuses options no inventory can be generated from, before anything is created. */
export function checkOptions(options: InitOptions): void {
  const integer = (name: string, value: number, min: number, max: number) => {
    if (!Number.isInteger(value) || value < min || value > max)
      throw new UserError(`--${name} must be an integer from ${min} to ${max}, got ${value}`)
  }
  integer('parts', options.parts, 1, 5_000_000)
  integer('days', options.days, 1, 3650)
  integer('faults', options.faults, 0, 1_000_000)
  integer('seed', options.seed, 0, 2 ** 32 - 1)
  if (options.idBase !== undefined) integer('id-base', options.idBase, 0, 100_000_000)
  if (options.variants !== undefined && options.variants.length !== options.faults) {
    throw new UserError(
      `${options.variants.length} fault variants were given for ${options.faults} faults; ` +
        'give as many variants as faults',
    )
  }
  if (options.faults > maxFaults(options.parts)) {
    throw new UserError(
      `--faults ${options.faults} is larger than possible with --parts ${options.parts}: ` +
        `each fault needs a part of its own, so at most ${maxFaults(options.parts)}`,
      {
        suggestions: [`Raise --parts to at least ${options.faults * 2}, or lower --faults.`],
      },
    )
  }
}

function prepareTarget(path: string, force: boolean): void {
  if (existsSync(path) && !force) {
    throw new UserError(`${path} already exists; not overwriting it`, {
      suggestions: ['Pass --force to replace it, or choose another --db.'],
    })
  }
  const directory = dirname(path)
  try {
    mkdirSync(directory, {recursive: true})
    accessSync(directory, fsConstants.W_OK)
  } catch (error) {
    throw new ConfigError(`cannot write to ${directory}: ${(error as Error).message}`, {
      code: 'PATH_NOT_WRITABLE',
      cause: error,
      suggestions: ['Choose a writable --db path.'],
    })
  }
}

/**
 * Generates a realistic inventory with injected faults and writes it, with its ground truth
 * (`<db>.faults.json`), atomically: a temporary file is renamed into place only when complete.
 */
export function initInventory(options: InitOptions): InitResult {
  checkOptions(options)
  const path = resolve(options.path)
  prepareTarget(path, options.force ?? false)
  const temporary = `${path}.tmp-${process.pid}`
  rmSync(temporary, {force: true})
  const db = new SqliteConnection(temporary)
  try {
    db.exec('PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;')
    const generated = generateRows(db, options)
    db.exec(INDEX_SQL)
    db.exec('ANALYZE')
    db.close()
    const {parts, transactions, faults} = generated
    const result: InitResult = {db: path, parts, transactions, faults}
    writeFileSync(`${temporary}.faults.json`, faultsFileText(options.seed, generated.clock, generated.faults))
    renameSync(`${temporary}.faults.json`, `${path}.faults.json`)
    renameSync(temporary, path)
    return result
  } catch (error) {
    db.close()
    rmSync(temporary, {force: true})
    rmSync(`${temporary}.faults.json`, {force: true})
    throw error
  }
}

/** The ground truth file written next to a generated inventory. */
export function faultsFileText(seed: number, clock: number, faults: InjectedFault[]): string {
  return JSON.stringify({seed, clock, faults}, null, 2) + '\n'
}

export interface GeneratedRows {
  parts: number
  transactions: number
  faults: InjectedFault[]
  clock: number
}

/**
 * Creates the reference schema in an empty SQLite database and writes a generated inventory into
 * it, without indexes. Other backends load their copy from these rows, so the same seed gives
 * the same inventory everywhere.
 */
export function generateRows(db: SqliteConnection, options: InitOptions, sink?: SimulationRowSink): GeneratedRows {
  checkOptions(options)
  // Planted text is written next to rows it looks up in SQLite: with a sink they would not be there.
  if (sink && options.hostileText) throw new Error('hostile text needs every row in SQLite; generate without a sink')
  db.exec(SCHEMA_SQL)
  db.exec('BEGIN')
  try {
    const random = new Random(options.seed)
    const clock = options.clock ?? DEFAULT_CLOCK
    const writer = new SimulationWriter(db, random.fork(1), clock, options.phrasings ?? 'train', options.idBase ?? 0)
    writer.sink = sink
    const parts = createParts(writer, random.fork(2), options.parts, options.idBase ?? 0)
    const plan = options.variants ?? planFaults(random.fork(3), options.faults)
    const faultPartIndexes = new Set(
      random
        .fork(4)
        .shuffle(parts.map((_, index) => index))
        .slice(0, plan.length),
    )
    const every = Math.max(1, Math.ceil(parts.length / 20))
    parts.forEach((part, index) => {
      writeHistory(writer, part, options.days, !faultPartIndexes.has(index))
      if ((index + 1) % every === 0 || index + 1 === parts.length) options.onProgress?.(index + 1, parts.length)
    })
    const faultParts = [...faultPartIndexes].sort((a, b) => a - b).map((index) => parts[index])
    const faults = plan.map((variant, index) => injectFault(writer, variant, faultParts[index], parts, index + 1))
    if (options.hostileText) plantHostileText(writer, faults, random.fork(5))
    const meta = {
      schema_version: String(SCHEMA_VERSION),
      clock: String(clock),
      seed: String(options.seed),
      generator: 'invagent inventory init',
    }
    for (const [key, value] of Object.entries(meta))
      db.run('INSERT INTO invagent_meta (key, value) VALUES (?, ?)', key, value)
    db.exec('COMMIT')
    return {parts: parts.length, transactions: writer.transactions, faults, clock}
  } catch (error) {
    if (db.db.isTransaction) db.exec('ROLLBACK')
    throw error
  }
}

function createParts(writer: SimulationWriter, random: Random, count: number, idBase: number): SimPart[] {
  const parts: SimPart[] = []
  const familyCounters = new Map<string, number>()
  for (let index = 1; index <= count; index++) {
    const family: PartFamily = random.pick(PART_FAMILIES)
    const number = (familyCounters.get(family.prefix) ?? 10000) + random.int(1, 7)
    familyCounters.set(family.prefix, number)
    const part: SimPart = {
      id: `P-${String(idBase + index).padStart(6, '0')}`,
      sku: `${family.prefix}-${number}`,
      name: `${random.pick(family.names)} ${random.pick(family.variants)}`,
      uom: family.uom,
      packs: family.packs.filter(() => random.bool(0.7)),
      lot: family.lot,
      onHand: 0,
      reserved: 0,
    }
    const location =
      `WH${random.int(1, 2)}-${String.fromCharCode(65 + random.int(0, 7))}` +
      `${String(random.int(1, 24)).padStart(2, '0')}-${random.int(1, 6)}`
    writer.db.run(
      'INSERT INTO parts (id, sku, name, uom, on_hand, reserved, location, updated_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?)',
      part.id,
      part.sku,
      part.name,
      part.uom,
      location,
      writer.clock,
    )
    for (const [uom, factor] of part.packs)
      writer.db.run('INSERT INTO uom_conversions (part_id, uom, factor) VALUES (?, ?, ?)', part.id, uom, factor)
    parts.push(part)
  }
  return parts
}

/** A posted movement of a part, with a sometimes-present info event. */
export function postMovement(
  writer: SimulationWriter,
  part: SimPart,
  kind: TxnInput['kind'],
  delta: number,
  createdAt: number,
  options: {status?: TxnInput['status']; ref?: string; source?: TxnInput['source']; info?: boolean} = {},
): string {
  const random = writer.random
  let qty = delta
  let uom = part.uom
  if (kind === 'receipt' && part.packs.length > 0 && random.bool(0.3)) {
    const [packUom, factor] = random.pick(part.packs)
    if (delta % factor === 0 && delta / factor > 0) {
      qty = delta / factor
      uom = packUom
    }
  }
  const source = options.source ?? (kind === 'issue' && random.bool(0.3) ? 'erp' : SOURCE_OF_KIND[kind])
  const ref = options.ref ?? writer.ref(kind === 'issue' && source === 'erp' ? 'WO' : REF_OF_KIND[kind])
  const status = options.status ?? 'posted'
  const id = writer.insertTransaction({partId: part.id, sku: part.sku, kind, qty, uom, status, source, ref, createdAt})
  if (status === 'posted') part.onHand += delta
  if (options.info ?? random.bool(0.2))
    writer.event(id, createdAt + random.int(1000, 60000), 'info', {ref, source, qty: Math.abs(qty), uom})
  return id
}

function writeHistory(writer: SimulationWriter, part: SimPart, days: number, lively: boolean): void {
  const random = writer.random
  const start = writer.clock - days * DAY_MS
  const count = Math.max(2, Math.round((days / 3) * (0.5 + random.float())))
  const times = Array.from({length: count}, () => random.int(start, writer.clock - 3 * HOUR_MS)).sort((a, b) => a - b)
  const [lotMin, lotMax] = part.lot
  const packFactor = part.packs.length > 0 ? part.packs[0][1] : 1
  const opening = packFactor * Math.ceil(lotMax / packFactor) * random.int(1, 3)
  postMovement(writer, part, 'receipt', opening, times[0])
  const shipped: Array<{ref: string; qty: number; at: number}> = []
  for (const at of times.slice(1)) {
    const kind = random.weighted([
      ['issue', 50],
      ['receipt', 20],
      ['transfer_out', 7],
      ['transfer_in', 7],
      ['return', 6],
      ['adjustment', 10],
    ] as const)
    const size = random.int(Math.max(1, Math.floor(lotMin / 4)), Math.max(1, Math.floor(lotMax / 4)))
    if (kind === 'issue' || kind === 'transfer_out') {
      if (size > part.onHand) {
        postMovement(writer, part, 'receipt', lotMax, at)
        continue
      }
      const ref = writer.ref(kind === 'issue' ? 'SO' : 'TR')
      postMovement(writer, part, kind, -size, at, {ref, source: kind === 'issue' ? 'ecommerce' : 'erp'})
      if (kind === 'issue') shipped.push({ref, qty: size, at})
    } else if (kind === 'adjustment') {
      const delta = random.bool(0.5) || part.onHand < 5 ? random.int(1, 5) : -random.int(1, Math.min(5, part.onHand))
      postMovement(writer, part, 'adjustment', delta, at)
    } else if (kind === 'return') {
      postMovement(writer, part, 'return', random.int(1, 3), at)
    } else {
      postMovement(writer, part, kind, kind === 'receipt' ? lotMax : size, at)
    }
  }
  if (random.bool(0.02)) {
    // A movement cancelled before posting: void rows are part of every real ledger.
    postMovement(writer, part, 'issue', -1, times[times.length - 1] + 1000, {status: 'void', info: false})
  }
  if (lively) {
    for (const order of shipped.slice(-2))
      if (random.bool(0.3)) writer.reservation(part.id, order.qty, order.ref, 'fulfilled', order.at - HOUR_MS)
    if (random.bool(0.15) && part.onHand >= 4) {
      const qty = random.int(1, Math.floor(part.onHand / 2))
      writer.reservation(part.id, qty, writer.ref('SO'), 'active', writer.clock - random.int(1, 72) * HOUR_MS)
      part.reserved += qty
    }
    if (random.bool(0.04))
      writer.reservation(
        part.id,
        random.int(1, 10),
        writer.ref('SO'),
        'released',
        writer.clock - random.int(24, 240) * HOUR_MS,
      )
    if (random.bool(0.03)) {
      // In flight: pending for minutes, not stuck.
      postMovement(writer, part, 'receipt', lotMax, writer.clock - random.int(1, 60) * 60000, {
        status: 'pending',
        info: false,
      })
    }
    if (random.bool(0.05))
      writer.db.run(
        'INSERT INTO sku_aliases (alias, part_id) VALUES (?, ?)',
        `LEG-${part.sku.replace('-', '')}`,
        part.id,
      )
  }
  writer.saveCaches(part)
}
