import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {INDEX_SQL, SCHEMA_SQL, SCHEMA_VERSION} from '../../src/inventory/schema.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'

/*
 * Hand-built reference inventories for unit tests: real rows in a real SQLite file with the
 * reference schema, a handful at a time, so that every test states exactly the data it relies
 * on. Nothing is mocked; the inventory under test is the production SqliteInventory.
 */

export const HOUR_MS = 60 * 60 * 1000
export const MINUTE_MS = 60 * 1000
/** The frozen "now" of every built inventory unless a test sets another one. */
export const NOW = Date.UTC(2026, 0, 31, 12, 0, 0)

export interface PartRow {
  id: string
  sku: string
  name?: string
  uom?: string
  on_hand?: number
  reserved?: number
  location?: string
  updated_at?: number
}

export interface TransactionRow {
  id: string
  /** null or an id that is not in parts: an orphan. */
  part_id: string | null
  qty: number
  /** Defaults to the part's SKU when the part was added to this builder, else required. */
  sku?: string
  kind?: 'receipt' | 'issue' | 'adjustment' | 'transfer_in' | 'transfer_out' | 'return'
  /** Defaults to the part's unit, or "EA". */
  uom?: string
  status?: 'pending' | 'posted' | 'error' | 'void'
  source?: string
  external_ref?: string
  created_at?: number
  /** Defaults to created_at + 1 minute for posted rows, null otherwise. */
  posted_at?: number | null
}

export interface ReservationRow {
  id: string
  part_id: string
  qty: number
  order_ref: string
  status?: 'active' | 'released' | 'fulfilled'
  created_at?: number
}

export interface EventRow {
  txn_id: string
  message: string
  level?: 'info' | 'warn' | 'error'
  at?: number
}

const opened: SqliteInventory[] = []

/** Writes the rows of one small inventory, then opens it as a SqliteInventory. */
export class InventoryBuilder {
  readonly path: string
  private readonly db: DatabaseSync
  private readonly parts = new Map<string, {sku: string; uom: string}>()

  constructor() {
    this.path = join(mkdtempSync(join(tmpdir(), 'invagent-unit-')), 'inventory.db')
    this.db = new DatabaseSync(this.path)
    // One transaction for the whole build, without fsync: a fixture is rebuilt for every test.
    this.db.exec('PRAGMA synchronous = OFF; BEGIN')
    this.db.exec(SCHEMA_SQL)
    this.db.exec(INDEX_SQL)
    this.meta('schema_version', String(SCHEMA_VERSION))
    this.clock(NOW)
  }

  /** Sets invagent_meta 'clock', the frozen "now" of time-based rules. */
  clock(epochMs: number): this {
    return this.meta('clock', String(epochMs))
  }

  meta(key: string, value: string): this {
    this.db.prepare('INSERT OR REPLACE INTO invagent_meta (key, value) VALUES (?, ?)').run(key, value)
    return this
  }

  part(row: PartRow): this {
    const uom = row.uom ?? 'EA'
    this.db
      .prepare(
        'INSERT INTO parts (id, sku, name, uom, on_hand, reserved, location, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        row.id,
        row.sku,
        row.name ?? `Part ${row.sku}`,
        uom,
        row.on_hand ?? 0,
        row.reserved ?? 0,
        row.location ?? 'WH1-A01-1',
        row.updated_at ?? NOW - 24 * HOUR_MS,
      )
    this.parts.set(row.id, {sku: row.sku, uom})
    return this
  }

  /** `factor` units of the part's unit per one `uom`. */
  conversion(partId: string, uom: string, factor: number): this {
    this.db.prepare('INSERT INTO uom_conversions (part_id, uom, factor) VALUES (?, ?, ?)').run(partId, uom, factor)
    return this
  }

  alias(alias: string, partId: string): this {
    this.db.prepare('INSERT INTO sku_aliases (alias, part_id) VALUES (?, ?)').run(alias, partId)
    return this
  }

  transaction(row: TransactionRow): this {
    const part = row.part_id === null ? undefined : this.parts.get(row.part_id)
    const sku = row.sku ?? part?.sku
    if (sku === undefined)
      throw new Error(`transaction ${row.id}: give a sku, its part ${String(row.part_id)} is not in this builder`)
    const status = row.status ?? 'posted'
    const createdAt = row.created_at ?? NOW - 24 * HOUR_MS
    const postedAt = row.posted_at !== undefined ? row.posted_at : status === 'posted' ? createdAt + MINUTE_MS : null
    this.db
      .prepare(
        'INSERT INTO transactions (id, part_id, sku, kind, qty, uom, status, source, external_ref, created_at, posted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        row.id,
        row.part_id,
        sku,
        row.kind ?? 'receipt',
        row.qty,
        row.uom ?? part?.uom ?? 'EA',
        status,
        row.source ?? 'wms',
        row.external_ref ?? `REF-${row.id}`,
        createdAt,
        postedAt,
      )
    return this
  }

  reservation(row: ReservationRow): this {
    this.db
      .prepare('INSERT INTO reservations (id, part_id, qty, order_ref, status, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(row.id, row.part_id, row.qty, row.order_ref, row.status ?? 'active', row.created_at ?? NOW - 5 * HOUR_MS)
    return this
  }

  event(row: EventRow): this {
    this.db
      .prepare('INSERT INTO integration_events (txn_id, at, level, message) VALUES (?, ?, ?, ?)')
      .run(row.txn_id, row.at ?? NOW - HOUR_MS, row.level ?? 'error', row.message)
    return this
  }

  /** Raw SQL for the rare fixture the helpers above do not cover. */
  sql(text: string): this {
    this.db.exec(text)
    return this
  }

  /** Closes the builder's connection and opens the file as the inventory under test. */
  open(): SqliteInventory {
    this.db.exec('COMMIT')
    this.db.close()
    const inventory = SqliteInventory.open(this.path)
    opened.push(inventory)
    return inventory
  }
}

export function buildInventory(): InventoryBuilder {
  return new InventoryBuilder()
}

/** Closes every inventory opened by a builder and removes its folder; use in afterEach. */
export function removeBuiltInventories(): void {
  for (const inventory of opened.splice(0)) {
    inventory.close()
    rmSync(dirname(inventory.location), {recursive: true, force: true})
  }
}

/** Reads one row straight from the database, bypassing the tools under test. */
export function row<T>(
  inventory: SqliteInventory,
  sql: string,
  ...params: Array<string | number | null>
): T | undefined {
  return inventory.db.get<T>(sql, ...params)
}

/** The part's caches as stored, for before/after comparisons. */
export function caches(inventory: SqliteInventory, partId: string): {on_hand: number; reserved: number} {
  const found = row<{on_hand: number; reserved: number}>(
    inventory,
    'SELECT on_hand, reserved FROM parts WHERE id = ?',
    partId,
  )
  if (!found) throw new Error(`no part ${partId}`)
  return {on_hand: found.on_hand, reserved: found.reserved}
}

/** Every part id and transaction id: the scope that makes detectInScope answer for everything. */
export function everything(inventory: SqliteInventory): {
  partIds: Set<string>
  txnIds: Set<string>
  reservationIds: Set<string>
  remapTargets: Map<string, string>
} {
  return {
    partIds: new Set(inventory.db.all<{id: string}>('SELECT id FROM parts').map((found) => found.id)),
    txnIds: new Set(inventory.db.all<{id: string}>('SELECT id FROM transactions').map((found) => found.id)),
    reservationIds: new Set(inventory.db.all<{id: string}>('SELECT id FROM reservations').map((found) => found.id)),
    remapTargets: new Map(),
  }
}
