import {detectAll, detectForEntities, ledgerBalanceOf} from '../detect/sqlite-detector.js'
import type {Finding} from '../detect/finding.js'
import {ConfigError} from '../errors.js'
import type {RuleName} from '../tools/catalogue.js'
import type {
  IntegrationEventRecord,
  PartRecord,
  ReservationRecord,
  ToolResult,
  TransactionRecord,
  WriteResult,
} from '../tools/tools.js'
import {
  ToolFailure,
  type AgentAction,
  type EntitySet,
  type InventoryBackend,
  type PartRow,
  type ReservationRow,
  type RowSelection,
  type ScopeRows,
  type TransactionQuery,
  type TransactionRow,
  type TransactionUpdate,
  TRANSACTION_ROW_COLUMNS,
  transactionRowValues,
} from './backend.js'
import {openInventoryDatabase, SqliteConnection} from './sqlite-connection.js'
import {NORMALIZED_SKU_SQL, SCHEMA_SQL, STOCK_DELTA_SQL} from './schema.js'

type TransactionWithDelta = Omit<TransactionRecord, 'stock_delta'> & {stock_delta: number | null}

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
/** A part row with its conversions and aliases as JSON arrays, each ordered as the tools show them. */
const PART_RECORD_SQL =
  'SELECT p.id, p.sku, p.name, p.uom, p.on_hand, p.reserved, p.location, p.updated_at, ' +
  "(SELECT json_group_array(json_object('uom', uom, 'factor', factor)) FROM " +
  '(SELECT uom, factor FROM uom_conversions WHERE part_id = p.id ORDER BY uom)) AS conversions, ' +
  '(SELECT json_group_array(alias) FROM (SELECT alias FROM sku_aliases WHERE part_id = p.id ORDER BY alias)) ' +
  'AS aliases FROM parts p WHERE p.id = ?'
/** A list of ids bound as one JSON array parameter. */
const IDS = '(SELECT value FROM json_each(?))'
const TRANSACTION_UPDATABLE = new Map([
  ['status', 'status'],
  ['posted_at', 'posted_at'],
  ['uom', 'uom'],
  ['part_id', 'part_id'],
])

const TRANSACTION_COLUMNS =
  't.id, t.part_id, t.sku, t.kind, t.qty, t.uom, t.status, t.source, t.external_ref, t.created_at, t.posted_at, ' +
  `${STOCK_DELTA_SQL} AS stock_delta`
const TRANSACTION_FROM =
  'transactions t LEFT JOIN parts p ON p.id = t.part_id ' +
  'LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom'

/** The same normalization as NORMALIZED_SKU_SQL, for a SKU as received. */
export function normalizeSku(sku: string): string {
  return sku.toUpperCase().replace(/[-_ .]/g, '')
}

/** The embedded reference inventory on node:sqlite. */
export class SqliteInventory implements InventoryBackend {
  readonly location: string
  private frozenClock: number | undefined
  private depth = 0
  private spillDisabled = false
  private readonly readOnly: boolean

  readonly db: SqliteConnection

  private constructor(db: SqliteConnection, readOnly = false) {
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

  // ---- reads -------------------------------------------------------------------------------

  async getPart(partId: string): Promise<PartRecord> {
    return this.partOrFail(partId)
  }

  /** The part with its conversions and aliases, in one statement (tools and write previews ask often). */
  private partOrFail(partId: string): PartRecord {
    const row = this.db.get<Omit<PartRecord, 'conversions' | 'aliases'> & {conversions: string; aliases: string}>(
      PART_RECORD_SQL,
      partId,
    )
    if (!row) throw new ToolFailure(`part "${partId}" does not exist`)
    return {
      ...row,
      conversions: JSON.parse(row.conversions) as PartRecord['conversions'],
      aliases: JSON.parse(row.aliases) as string[],
    }
  }

  async findPartsBySku(sku: string): Promise<ToolResult<'find_part_by_sku'>> {
    const matches: ToolResult<'find_part_by_sku'>['matches'] = []
    const exact = this.db.get<{id: string; sku: string}>('SELECT id, sku FROM parts WHERE sku = ?', sku)
    if (exact) matches.push({part_id: exact.id, sku: exact.sku, match: 'exact'})
    const alias = this.db.get<{id: string; sku: string}>(
      'SELECT p.id AS id, p.sku AS sku FROM sku_aliases a JOIN parts p ON p.id = a.part_id WHERE a.alias = ?',
      sku,
    )
    if (alias) matches.push({part_id: alias.id, sku: alias.sku, match: 'alias'})
    const normalized = normalizeSku(sku)
    if (normalized.length > 0) {
      for (const row of this.db.all<{id: string; sku: string}>(
        `SELECT id, sku FROM parts WHERE ${NORMALIZED_SKU_SQL} = ?`,
        normalized,
      )) {
        if (!matches.some((match) => match.part_id === row.id))
          matches.push({part_id: row.id, sku: row.sku, match: 'normalized'})
      }
    }
    return {matches}
  }

  async listTransactions(query: TransactionQuery): Promise<ToolResult<'list_transactions'>> {
    if (query.partId === undefined && query.externalRef === undefined)
      throw new ToolFailure('give part_id or external_ref')
    const where: string[] = []
    const params: Array<string | number> = []
    const filters: Array<[string, string | undefined]> = [
      ['t.part_id = ?', query.partId],
      ['t.external_ref = ?', query.externalRef],
      ['t.status = ?', query.status],
      ['t.kind = ?', query.kind],
    ]
    for (const [condition, value] of filters) {
      if (value === undefined) continue
      where.push(condition)
      params.push(value)
    }
    const condition = where.join(' AND ')
    const total = this.db.get<{n: number}>(`SELECT count(*) AS n FROM transactions t WHERE ${condition}`, ...params)!.n
    const transactions = this.db.all<TransactionWithDelta>(
      `SELECT ${TRANSACTION_COLUMNS} FROM ${TRANSACTION_FROM} WHERE ${condition}
       ORDER BY t.created_at DESC, t.id DESC LIMIT ?`,
      ...params,
      query.limit ?? 20,
    )
    return {transactions, total}
  }

  async getTransaction(txnId: string): Promise<TransactionRecord> {
    return this.transactionOrFail(txnId)
  }

  private transactionOrFail(txnId: string): TransactionRecord {
    const row = this.db.get<TransactionWithDelta>(
      `SELECT ${TRANSACTION_COLUMNS} FROM ${TRANSACTION_FROM} WHERE t.id = ?`,
      txnId,
    )
    if (!row) throw new ToolFailure(`transaction "${txnId}" does not exist`)
    return row
  }

  async getLedgerBalance(partId: string): Promise<ToolResult<'get_ledger_balance'>> {
    const part = this.partOrFail(partId)
    const stats = this.db.get<{posted: number; unconvertible: number; largest: number}>(
      `SELECT count(*) AS posted, COALESCE(SUM(${STOCK_DELTA_SQL} IS NULL), 0) AS unconvertible,
         COALESCE(MAX(abs(${STOCK_DELTA_SQL})), 0) AS largest
       FROM ${TRANSACTION_FROM} WHERE t.part_id = ? AND t.status = 'posted'`,
      partId,
    )!
    const active = this.db.get<{n: number}>(
      `SELECT COALESCE(SUM(qty), 0) AS n FROM reservations WHERE part_id = ? AND status = 'active'`,
      partId,
    )!.n
    return {
      part_id: partId,
      uom: part.uom,
      on_hand: part.on_hand,
      ledger_balance: ledgerBalanceOf(this.db, partId),
      posted_count: stats.posted,
      unconvertible_count: stats.unconvertible,
      largest_posting: stats.largest,
      reserved: part.reserved,
      active_reserved: active,
    }
  }

  async getIntegrationEvents(txnId: string): Promise<IntegrationEventRecord[]> {
    return this.db.all<IntegrationEventRecord>(
      'SELECT id, txn_id, at, level, message FROM integration_events WHERE txn_id = ? ORDER BY at, id',
      txnId,
    )
  }

  async listReservations(partId: string, status?: ReservationRecord['status']): Promise<ReservationRecord[]> {
    return this.db.all<ReservationRecord>(
      `SELECT r.id, r.part_id, r.qty, r.order_ref, r.status, r.created_at,
        COALESCE((SELECT -SUM(${STOCK_DELTA_SQL}) FROM ${TRANSACTION_FROM}
          WHERE t.external_ref = r.order_ref AND t.part_id = r.part_id AND t.status = 'posted' AND t.kind = 'issue'), 0)
          AS shipped_qty
       FROM reservations r WHERE r.part_id = ? AND (? IS NULL OR r.status = ?) ORDER BY r.created_at, r.id`,
      partId,
      status ?? null,
      status ?? null,
    )
  }

  async getReservation(reservationId: string): Promise<ReservationRow> {
    const row = this.db.get<ReservationRow>(
      'SELECT id, part_id, qty, order_ref, status, created_at FROM reservations WHERE id = ?',
      reservationId,
    )
    if (!row) throw new ToolFailure(`reservation "${reservationId}" does not exist`)
    return row
  }

  /**
   * One query per table and kind of selection, whatever its size: the ids travel as one JSON array
   * (`IN (SELECT value FROM json_each(?))` seeks the index once per id), so a plan's scope costs a
   * handful of statements instead of a few per row.
   */
  async readRows(selection: RowSelection): Promise<ScopeRows> {
    const list = (values: readonly string[] | undefined) => JSON.stringify(values ?? [])
    const ledgers = selection.ledgers ?? []
    const transactions =
      ledgers.length + (selection.transactions ?? []).length + (selection.externalRefs ?? []).length === 0
        ? []
        : this.db.all<TransactionRow>(
            `SELECT ${ROW_COLUMNS} FROM transactions WHERE part_id IN ${IDS} UNION ` +
              `SELECT ${ROW_COLUMNS} FROM transactions WHERE id IN ${IDS} UNION ` +
              `SELECT ${ROW_COLUMNS} FROM transactions WHERE external_ref IN ${IDS} ORDER BY id`,
            list(ledgers),
            list(selection.transactions),
            list(selection.externalRefs),
          )
    const reservations =
      ledgers.length === 0
        ? []
        : this.db.all<ReservationRow>(
            `SELECT id, part_id, qty, order_ref, status, created_at FROM reservations WHERE part_id IN ${IDS} ` +
              'ORDER BY id',
            list(ledgers),
          )
    const partIds = [...new Set([...(selection.parts ?? []), ...ledgers])]
    const none = {parts: [] as PartRow[], conversions: [], aliases: []}
    const {parts, conversions, aliases} =
      partIds.length === 0
        ? none
        : {
            parts: this.db.all<PartRow>(
              `SELECT id, sku, name, uom, on_hand, reserved, location, updated_at FROM parts WHERE id IN ${IDS} ` +
                'ORDER BY id',
              list(partIds),
            ),
            conversions: this.db.all<ScopeRows['uom_conversions'][number]>(
              `SELECT part_id, uom, factor FROM uom_conversions WHERE part_id IN ${IDS} ORDER BY part_id, uom`,
              list(partIds),
            ),
            aliases: this.db.all<ScopeRows['sku_aliases'][number]>(
              `SELECT alias, part_id FROM sku_aliases WHERE part_id IN ${IDS} ORDER BY part_id, alias`,
              list(partIds),
            ),
          }
    return {parts, uom_conversions: conversions, sku_aliases: aliases, transactions, reservations}
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

  async findAction(idempotencyKey: string): Promise<AgentAction | undefined> {
    const row = this.db.get<{
      idempotency_key: string
      run_id: string
      finding_id: string
      tool: string
      args: string
      result: string
      at: number
    }>(
      'SELECT idempotency_key, run_id, finding_id, tool, args, result, at FROM agent_actions WHERE idempotency_key = ?',
      idempotencyKey,
    )
    if (!row) return undefined
    return {
      idempotencyKey: row.idempotency_key,
      runId: row.run_id,
      findingId: row.finding_id,
      tool: row.tool,
      args: row.args,
      result: JSON.parse(row.result) as WriteResult,
      at: row.at,
    }
  }

  async recordAction(action: AgentAction): Promise<void> {
    this.db.run(
      'INSERT INTO agent_actions (idempotency_key, run_id, finding_id, tool, args, result, at) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?)',
      action.idempotencyKey,
      action.runId,
      action.findingId,
      action.tool,
      action.args,
      JSON.stringify(action.result),
      action.at,
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
    try {
      // A write that is rolled back at once: it fails exactly where a fix would (file mode, folder, locks).
      await this.unitOfWork(
        async () => {
          this.db.run(`INSERT OR REPLACE INTO invagent_meta (key, value) VALUES ('write_probe', '1')`)
        },
        () => false,
      )
    } catch (error) {
      throw new ConfigError(`cannot write the inventory ${this.location}: ${(error as Error).message}`, {
        code: 'DB_NOT_WRITABLE',
        cause: error,
        suggestions: [
          'Check the file and its folder are writable by this user, or run with --dry-run to plan without writing.',
        ],
      })
    }
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
