import type {SQLInputValue} from 'node:sqlite'

import {detectAll, detectForEntities, ledgerBalanceOf} from '../detect/sqlite-detector.js'
import type {Finding} from '../detect/finding.js'
import {ConfigError} from '../errors.js'
import type {RuleName} from '../tools/catalogue.js'
import {
  probeWritable,
  ToolFailure,
  type EntitySet,
  type InventoryBackend,
  type ReservationRow,
  type ScopeRows,
  type TransactionRow,
  type TransactionUpdate,
  TRANSACTION_ROW_COLUMNS,
  transactionRowValues,
} from './backend.js'
import type {Dialect} from './read-queries.js'
import {SCHEMA_SQL} from './schema.js'
import {SqlReads} from './sql-reads.js'
import {openInventoryDatabase, SqliteConnection} from './sqlite-connection.js'

/*
 * A sandbox holds tens of rows: the lookups its reads make, and the indexes the whole-inventory
 * rules name (they run over the whole sandbox, which holds only the scope).
 */
const SANDBOX_INDEX_SQL = `
CREATE INDEX idx_transactions_part ON transactions (part_id, created_at);
CREATE INDEX idx_transactions_ref ON transactions (external_ref);
CREATE INDEX idx_transactions_ledger ON transactions (status, part_id, uom, qty);
CREATE INDEX idx_transactions_posted_ref ON transactions (source, external_ref) WHERE status = 'posted';
CREATE INDEX idx_reservations_part ON reservations (part_id, status);
CREATE INDEX idx_reservations_active ON reservations (status, part_id, qty);`

const ROW_COLUMNS = TRANSACTION_ROW_COLUMNS.join(', ')
const TRANSACTION_UPDATABLE = new Map([
  ['status', 'status'],
  ['posted_at', 'posted_at'],
  ['uom', 'uom'],
  ['part_id', 'part_id'],
])

/** The embedded reference inventory on node:sqlite. */
export class SqliteInventory extends SqlReads implements InventoryBackend {
  protected readonly dialect: Dialect = 'sqlite'
  readonly location: string
  private frozenClock: number | undefined
  private depth = 0
  private spillDisabled = false
  private readonly readOnly: boolean

  readonly db: SqliteConnection

  private constructor(db: SqliteConnection, readOnly = false) {
    super()
    this.db = db
    this.readOnly = readOnly
    this.location = db.path
    const clock = db.get<{value: string}>(`SELECT value FROM invagent_meta WHERE key = 'clock'`)
    this.frozenClock = clock ? Number(clock.value) : undefined
  }

  static open(path: string, options: {readOnly?: boolean} = {}): SqliteInventory {
    return new SqliteInventory(openInventoryDatabase(path, options), options.readOnly ?? false)
  }

  /**
   * An empty inventory in memory with the reference schema and the given clock: the sandbox a plan
   * is made in. Rows are copied in from the live inventory as the plan reads them.
   */
  static inMemory(clock: number): SqliteInventory {
    const connection = new SqliteConnection(':memory:')
    connection.exec(SCHEMA_SQL)
    connection.exec(SANDBOX_INDEX_SQL)
    connection.run(`INSERT INTO invagent_meta (key, value) VALUES ('clock', ?)`, String(clock))
    return new SqliteInventory(connection)
  }

  clock(): number {
    return this.frozenClock ?? Date.now()
  }

  /** Fixes "now" for this connection only (a sandbox takes the live inventory's clock). */
  freezeClock(now: number): void {
    this.frozenClock = now
  }

  /** Deletes every inventory row: a sandbox emptied between findings. Never called on a live inventory. */
  clearRows(): void {
    if (this.location !== ':memory:') throw new Error(`clearRows is only for in-memory sandboxes, not ${this.location}`)
    this.db.exec(
      'DELETE FROM parts; DELETE FROM uom_conversions; DELETE FROM sku_aliases; DELETE FROM transactions; ' +
        'DELETE FROM reservations; DELETE FROM integration_events; DELETE FROM agent_actions',
    )
  }

  close(): void {
    this.db.close()
  }

  // ---- reads (src/inventory/sql-reads.ts over src/inventory/read-queries.ts) --------------

  protected async select<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
    return this.db.all<T>(sql, ...(params as SQLInputValue[]))
  }

  protected async selectOne<T>(sql: string, params: readonly unknown[]): Promise<T | undefined> {
    return this.db.get<T>(sql, ...(params as SQLInputValue[]))
  }

  protected async execute(sql: string, params: readonly unknown[]): Promise<number> {
    return this.db.run(sql, ...(params as SQLInputValue[])).changes
  }

  /** One JSON array: `IN (SELECT value FROM json_each(?))` seeks the index once per id. */
  protected idList(ids: readonly string[]): string {
    return JSON.stringify(ids)
  }

  protected async ledgerBalance(partId: string): Promise<number> {
    return ledgerBalanceOf(this.db, partId)
  }

  // ---- primitive writes (the meaning of each tool is in src/tools/write-tools.ts) -----------

  async updateTransaction(txnId: string, fields: TransactionUpdate): Promise<void> {
    const entries = Object.entries(fields).filter(([, value]) => value !== undefined)
    if (entries.length === 0) return
    const columns = entries.map(([column]) => `${TRANSACTION_UPDATABLE.get(column) ?? fail(column)} = ?`).join(', ')
    const changed = this.db.run(
      `UPDATE transactions SET ${columns} WHERE id = ?`,
      ...entries.map(([, value]) => value as string | number | null),
      txnId,
    )
    if (changed.changes !== 1) throw new ToolFailure(`transaction "${txnId}" does not exist`)
  }

  async addToPartCaches(partId: string, onHandDelta: number, reservedDelta: number): Promise<void> {
    const changed = this.db.run(
      'UPDATE parts SET on_hand = on_hand + ?, reserved = reserved + ?, updated_at = ? WHERE id = ?',
      onHandDelta,
      reservedDelta,
      this.clock(),
      partId,
    )
    if (changed.changes !== 1) throw new ToolFailure(`part "${partId}" does not exist`)
  }

  async setReservationStatus(reservationId: string, status: ReservationRow['status']): Promise<void> {
    const changed = this.db.run('UPDATE reservations SET status = ? WHERE id = ?', status, reservationId)
    if (changed.changes !== 1) throw new ToolFailure(`reservation "${reservationId}" does not exist`)
  }

  async insertTransaction(row: TransactionRow): Promise<void> {
    this.db.run(
      `INSERT INTO transactions (${ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ...transactionRowValues(row),
    )
  }

  /** Inserts rows as they are (a sandbox seeded from another inventory); existing rows are kept. */
  insertRows(rows: ScopeRows): void {
    for (const part of rows.parts) {
      this.db.run(
        'INSERT OR IGNORE INTO parts (id, sku, name, uom, on_hand, reserved, location, updated_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        part.id,
        part.sku,
        part.name,
        part.uom,
        part.on_hand,
        part.reserved,
        part.location,
        part.updated_at,
      )
    }
    for (const row of rows.uom_conversions)
      this.db.run(
        'INSERT OR IGNORE INTO uom_conversions (part_id, uom, factor) VALUES (?, ?, ?)',
        row.part_id,
        row.uom,
        row.factor,
      )
    for (const row of rows.sku_aliases)
      this.db.run('INSERT OR IGNORE INTO sku_aliases (alias, part_id) VALUES (?, ?)', row.alias, row.part_id)
    for (const row of rows.transactions) {
      this.db.run(
        `INSERT OR IGNORE INTO transactions (${ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ...transactionRowValues(row),
      )
    }
    for (const row of rows.reservations) {
      this.db.run(
        'INSERT OR IGNORE INTO reservations (id, part_id, qty, order_ref, status, created_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?)',
        row.id,
        row.part_id,
        row.qty,
        row.order_ref,
        row.status,
        row.created_at,
      )
    }
  }

  async assertWritable(): Promise<void> {
    if (this.readOnly) throw new ConfigError(`${this.location} was opened read-only`, {code: 'DB_READ_ONLY'})
    await probeWritable(
      this,
      async () => this.db.run(`INSERT OR REPLACE INTO invagent_meta (key, value) VALUES ('write_probe', '1')`),
      'Check the file and its folder are writable by this user',
    )
  }

  // ---- detection and scope -----------------------------------------------------------------

  async detect(rules?: readonly RuleName[]): Promise<Finding[]> {
    return detectAll(this.db, this.clock(), rules)
  }

  async detectInScope(entities: EntitySet): Promise<Finding[]> {
    return detectForEntities(this.db, this.clock(), entities.partIds, entities.txnIds)
  }

  // ---- units of work -----------------------------------------------------------------------

  async unitOfWork<T>(work: () => Promise<T>, commit: (result: T) => boolean): Promise<T> {
    const outermost = this.depth === 0
    if (outermost && !this.spillDisabled) {
      // Keep uncommitted pages in memory, so a rolled-back unit never touches the database file.
      this.db.exec('PRAGMA cache_spill = OFF')
      this.spillDisabled = true
    }
    const savepoint = `u${this.depth}`
    this.db.exec(outermost ? 'BEGIN IMMEDIATE' : `SAVEPOINT ${savepoint}`)
    this.depth++
    const rollback = () => this.db.exec(outermost ? 'ROLLBACK' : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`)
    let result: T
    try {
      result = await work()
    } catch (error) {
      this.depth--
      rollback()
      throw error
    }
    this.depth--
    let keep = false
    try {
      keep = commit(result)
    } finally {
      if (keep) this.db.exec(outermost ? 'COMMIT' : `RELEASE ${savepoint}`)
      else rollback()
    }
    return result
  }
}

function fail(column: string): never {
  throw new Error(`transactions.${column} is not a column a write may change`)
}
