import {detectAllPostgres, detectForEntitiesPostgres, ledgerBalanceOfPostgres} from '../../detect/postgres-detector.js'
import type {Finding} from '../../detect/finding.js'
import type {RuleName} from '../../tools/catalogue.js'
import type {
  IntegrationEventRecord,
  PartRecord,
  ReservationRecord,
  ToolResult,
  TransactionRecord,
  WriteResult,
} from '../../tools/tools.js'
import {canonicalJson} from '../../util/canonical-json.js'
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
} from '../backend.js'
import {ConfigError} from '../../errors.js'
import {normalizeSku} from '../sqlite-backend.js'
import {checkPostgresInventory, PostgresConnection} from './connection.js'
import {PG_NORMALIZED_SKU_SQL, PG_STOCK_DELTA_SQL} from './schema.js'

/** Below this many transactions a second connection for detection costs more than it saves. */
const CONCURRENT_MIN_TRANSACTIONS = 200_000

type TransactionWithDelta = Omit<TransactionRecord, 'stock_delta'> & {stock_delta: number | null}

const ROW_COLUMNS = TRANSACTION_ROW_COLUMNS.join(', ')
const TRANSACTION_UPDATABLE = new Set(['status', 'posted_at', 'uom', 'part_id'])

const TRANSACTION_COLUMNS = `t.id, t.part_id, t.sku, t.kind, t.qty, t.uom, t.status, t.source, t.external_ref,
  t.created_at, t.posted_at,
  ${PG_STOCK_DELTA_SQL} AS stock_delta`
const TRANSACTION_FROM = `transactions t LEFT JOIN parts p ON p.id = t.part_id
  LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom`

/**
 * The reference inventory on PostgreSQL (docs/architecture.md, "Backends"). Reads of a whole
 * pass (detection) run in one REPEATABLE READ snapshot. A unit of work is one short READ
 * COMMITTED transaction (nested units are savepoints); inside it, `readRows` locks the rows it
 * reads (`SELECT … FOR UPDATE`, parts, then transactions, then reservations, each by id), so the
 * fingerprint check of src/agent/apply.ts runs under the lock and two writers of overlapping
 * scopes queue instead of deadlocking. The meaning of each write is in src/tools/write-tools.ts.
 */
export class PostgresInventory implements InventoryBackend {
  readonly location: string
  readonly db: PostgresConnection
  private readonly frozenClock: number | undefined
  /** 0 outside a transaction; 1 inside a unit of work or snapshot; more inside savepoints. */
  private depth = 0
  /** The connection detection's second pass runs on, opened on first use. */
  private helper: Promise<PostgresConnection> | undefined
  private readonly url: string
  /** True inside a unit of work (a write transaction), where readRows locks what it reads. */
  private writing = false
  /** Whether a whole-inventory pass may use a second connection (the benchmark turns it off to compare). */
  private concurrentDetection: boolean | 'always' = true

  private constructor(db: PostgresConnection, url: string, frozenClock: number | undefined) {
    this.db = db
    this.url = url
    this.location = db.display
    this.frozenClock = frozenClock
  }

  /** Connects and checks the schema (and indexes); `readOnly` makes every transaction read-only. */
  static async open(
    url: string,
    options: {
      readOnly?: boolean
      requireIndexes?: boolean
      /** Whether detection may use a second connection: `false` never, `'always'` even on a small ledger. */
      concurrentDetection?: boolean | 'always'
    } = {},
  ): Promise<PostgresInventory> {
    const db = await PostgresConnection.connect(url)
    try {
      await checkPostgresInventory(db, {requireIndexes: options.requireIndexes})
      if (options.readOnly) await db.exec('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY')
      const clock = await db.one<{value: string}>(`SELECT value FROM invagent_meta WHERE key = 'clock'`)
      const inventory = new PostgresInventory(db, url, clock ? Number(clock.value) : undefined)
      inventory.concurrentDetection = options.concurrentDetection ?? true
      return inventory
    } catch (error) {
      await db.close()
      throw error
    }
  }

  clock(): number {
    return this.frozenClock ?? Date.now()
  }

  async close(): Promise<void> {
    const helper = this.helper
    this.helper = undefined
    await Promise.all([
      this.db.close(),
      helper?.then(
        (connection) => connection.close(),
        () => {},
      ),
    ])
  }

  // ---- reads -------------------------------------------------------------------------------

  async getPart(partId: string): Promise<PartRecord> {
    const row = await this.db.one<Omit<PartRecord, 'conversions' | 'aliases'>>(
      'SELECT id, sku, name, uom, on_hand, reserved, location, updated_at FROM parts WHERE id = $1',
      [partId],
    )
    if (!row) throw new ToolFailure(`part "${partId}" does not exist`)
    const conversions = await this.db.query<{uom: string; factor: number}>(
      'SELECT uom, factor FROM uom_conversions WHERE part_id = $1 ORDER BY uom',
      [partId],
    )
    const aliases = await this.db.query<{alias: string}>(
      'SELECT alias FROM sku_aliases WHERE part_id = $1 ORDER BY alias',
      [partId],
    )
    return {...row, conversions, aliases: aliases.map((alias) => alias.alias)}
  }

  async findPartsBySku(sku: string): Promise<ToolResult<'find_part_by_sku'>> {
    const matches: ToolResult<'find_part_by_sku'>['matches'] = []
    const exact = await this.db.one<{id: string; sku: string}>('SELECT id, sku FROM parts WHERE sku = $1', [sku])
    if (exact) matches.push({part_id: exact.id, sku: exact.sku, match: 'exact'})
    const alias = await this.db.one<{id: string; sku: string}>(
      'SELECT p.id, p.sku FROM sku_aliases a JOIN parts p ON p.id = a.part_id WHERE a.alias = $1',
      [sku],
    )
    if (alias) matches.push({part_id: alias.id, sku: alias.sku, match: 'alias'})
    const normalized = normalizeSku(sku)
    if (normalized.length > 0) {
      // No ORDER BY, as in SQLite: both return the index's order, which is the id order for equal keys.
      const rows = await this.db.query<{id: string; sku: string}>(
        `SELECT id, sku FROM parts WHERE ${PG_NORMALIZED_SKU_SQL} = $1 ORDER BY id`,
        [normalized],
      )
      for (const row of rows) {
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
    const add = (condition: string, value: string) => {
      params.push(value)
      where.push(`${condition} = $${params.length}`)
    }
    if (query.partId !== undefined) add('t.part_id', query.partId)
    if (query.externalRef !== undefined) add('t.external_ref', query.externalRef)
    if (query.status !== undefined) add('t.status', query.status)
    if (query.kind !== undefined) add('t.kind', query.kind)
    const condition = where.join(' AND ')
    const total = (await this.db.one<{n: number}>(
      `SELECT count(*) AS n FROM transactions t WHERE ${condition}`,
      params,
    ))!.n
    const transactions = await this.db.query<TransactionWithDelta>(
      `SELECT ${TRANSACTION_COLUMNS} FROM ${TRANSACTION_FROM} WHERE ${condition}
       ORDER BY t.created_at DESC, t.id DESC LIMIT $${params.length + 1}`,
      [...params, query.limit ?? 20],
    )
    return {transactions, total}
  }

  async getTransaction(txnId: string): Promise<TransactionRecord> {
    const row = await this.db.one<TransactionWithDelta>(
      `SELECT ${TRANSACTION_COLUMNS} FROM ${TRANSACTION_FROM} WHERE t.id = $1`,
      [txnId],
    )
    if (!row) throw new ToolFailure(`transaction "${txnId}" does not exist`)
    return row
  }

  async getLedgerBalance(partId: string): Promise<ToolResult<'get_ledger_balance'>> {
    const part = await this.getPart(partId)
    const stats = (await this.db.one<{posted: number; unconvertible: number; largest: number}>(
      `SELECT count(*) AS posted, COUNT(*) FILTER (WHERE ${PG_STOCK_DELTA_SQL} IS NULL) AS unconvertible,
              COALESCE(MAX(abs(${PG_STOCK_DELTA_SQL})), 0) AS largest
       FROM ${TRANSACTION_FROM} WHERE t.part_id = $1 AND t.status = 'posted'`,
      [partId],
    ))!
    return {
      part_id: partId,
      uom: part.uom,
      on_hand: part.on_hand,
      ledger_balance: await ledgerBalanceOfPostgres(this.db, partId),
      posted_count: stats.posted,
      unconvertible_count: stats.unconvertible,
      largest_posting: stats.largest,
      reserved: part.reserved,
      active_reserved: (await this.db.one<{n: number}>(
        `SELECT COALESCE(SUM(qty), 0) AS n FROM reservations WHERE part_id = $1 AND status = 'active'`,
        [partId],
      ))!.n,
    }
  }

  async getIntegrationEvents(txnId: string): Promise<IntegrationEventRecord[]> {
    return this.db.query<IntegrationEventRecord>(
      'SELECT id, txn_id, at, level, message FROM integration_events WHERE txn_id = $1 ORDER BY at, id',
      [txnId],
    )
  }

  async listReservations(partId: string, status?: ReservationRecord['status']): Promise<ReservationRecord[]> {
    return this.db.query<ReservationRecord>(
      `SELECT r.id, r.part_id, r.qty, r.order_ref, r.status, r.created_at,
        COALESCE((SELECT -SUM(${PG_STOCK_DELTA_SQL}) FROM ${TRANSACTION_FROM}
                  WHERE t.external_ref = r.order_ref AND t.part_id = r.part_id
                    AND t.status = 'posted' AND t.kind = 'issue'), 0) AS shipped_qty
       FROM reservations r WHERE r.part_id = $1 AND ($2::text IS NULL OR r.status = $2) ORDER BY r.created_at, r.id`,
      [partId, status ?? null],
    )
  }

  async getReservation(reservationId: string): Promise<ReservationRow> {
    const row = await this.db.one<ReservationRow>(
      'SELECT id, part_id, qty, order_ref, status, created_at FROM reservations WHERE id = $1',
      [reservationId],
    )
    if (!row) throw new ToolFailure(`reservation "${reservationId}" does not exist`)
    return row
  }

  /**
   * The rows of a selection, one query per table, sorted by primary key. Inside a unit of work
   * the rows are locked as they are read (`FOR UPDATE`, in that fixed order) until it ends.
   */
  async readRows(selection: RowSelection): Promise<ScopeRows> {
    const ledgers = [...(selection.ledgers ?? [])]
    const partIds = [...new Set([...(selection.parts ?? []), ...ledgers])]
    const txnIds = [...(selection.transactions ?? [])]
    const refs = [...(selection.externalRefs ?? [])]
    const lock = this.depth > 0 && this.writing ? ' FOR UPDATE' : ''
    const parts =
      partIds.length === 0
        ? []
        : await this.db.query<PartRow>(
            `SELECT id, sku, name, uom, on_hand, reserved, location, updated_at FROM parts
       WHERE id = ANY($1) ORDER BY id${lock}`,
            [partIds],
          )
    const found = parts.map((part) => part.id)
    const conversions =
      found.length === 0
        ? []
        : await this.db.query<ScopeRows['uom_conversions'][number]>(
            'SELECT part_id, uom, factor FROM uom_conversions WHERE part_id = ANY($1) ORDER BY part_id, uom',
            [found],
          )
    const aliases =
      found.length === 0
        ? []
        : await this.db.query<ScopeRows['sku_aliases'][number]>(
            'SELECT alias, part_id FROM sku_aliases WHERE part_id = ANY($1) ORDER BY part_id, alias',
            [found],
          )
    const transactions =
      ledgers.length + txnIds.length + refs.length === 0
        ? []
        : await this.db.query<TransactionRow>(
            `SELECT ${ROW_COLUMNS} FROM transactions
       WHERE part_id = ANY($1) OR id = ANY($2) OR external_ref = ANY($3) ORDER BY id${lock}`,
            [ledgers, txnIds, refs],
          )
    const reservations =
      ledgers.length === 0
        ? []
        : await this.db.query<ReservationRow>(
            `SELECT id, part_id, qty, order_ref, status, created_at FROM reservations
       WHERE part_id = ANY($1) ORDER BY id${lock}`,
            [ledgers],
          )
    // Conversions and aliases in the order SQLite gives them: part by part, as the parts are sorted.
    const byPart = <T extends {part_id: string}>(rows: T[]) =>
      found.flatMap((id) => rows.filter((row) => row.part_id === id))
    return {
      parts,
      uom_conversions: byPart(conversions),
      sku_aliases: byPart(aliases),
      transactions,
      reservations,
    }
  }

  // ---- primitive writes (the meaning of each tool is in src/tools/write-tools.ts) -----------

  async updateTransaction(txnId: string, fields: TransactionUpdate): Promise<void> {
    const entries = Object.entries(fields).filter(([, value]) => value !== undefined)
    if (entries.length === 0) return
    for (const [column] of entries) {
      if (!TRANSACTION_UPDATABLE.has(column))
        throw new Error(`transactions.${column} is not a column a write may change`)
    }
    const columns = entries.map(([column], index) => `${column} = $${index + 1}`).join(', ')
    const changed = await this.db.run(`UPDATE transactions SET ${columns} WHERE id = $${entries.length + 1}`, [
      ...entries.map(([, value]) => value),
      txnId,
    ])
    if (changed !== 1) throw new ToolFailure(`transaction "${txnId}" does not exist`)
  }

  async addToPartCaches(partId: string, onHandDelta: number, reservedDelta: number): Promise<void> {
    const changed = await this.db.run(
      'UPDATE parts SET on_hand = on_hand + $1, reserved = reserved + $2, updated_at = $3 WHERE id = $4',
      [onHandDelta, reservedDelta, this.clock(), partId],
    )
    if (changed !== 1) throw new ToolFailure(`part "${partId}" does not exist`)
  }

  async setReservationStatus(reservationId: string, status: ReservationRow['status']): Promise<void> {
    const changed = await this.db.run('UPDATE reservations SET status = $1 WHERE id = $2', [status, reservationId])
    if (changed !== 1) throw new ToolFailure(`reservation "${reservationId}" does not exist`)
  }

  async insertTransaction(row: TransactionRow): Promise<void> {
    await this.db.query(
      `INSERT INTO transactions (${ROW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      transactionRowValues(row),
    )
  }

  async findAction(idempotencyKey: string): Promise<AgentAction | undefined> {
    const row = await this.db.one<{
      idempotency_key: string
      run_id: string
      finding_id: string
      tool: string
      args: unknown
      result: WriteResult
      at: number
    }>(
      `SELECT idempotency_key, run_id, finding_id, tool, args, result, at FROM agent_actions
       WHERE idempotency_key = $1`,
      [idempotencyKey],
    )
    if (!row) return undefined
    return {
      idempotencyKey: row.idempotency_key,
      runId: row.run_id,
      findingId: row.finding_id,
      tool: row.tool,
      // jsonb keeps the value, not the text: canonical JSON again, as SQLite stores it.
      args: canonicalJson(row.args),
      result: row.result,
      at: row.at,
    }
  }

  async recordAction(action: AgentAction): Promise<void> {
    await this.db.query(
      `INSERT INTO agent_actions (idempotency_key, run_id, finding_id, tool, args, result, at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        action.idempotencyKey,
        action.runId,
        action.findingId,
        action.tool,
        action.args,
        JSON.stringify(action.result),
        action.at,
      ],
    )
  }

  async assertWritable(): Promise<void> {
    try {
      // A write that is rolled back at once: it fails exactly where a fix would (read-only role or server).
      await this.unitOfWork(
        async () => {
          await this.db.query(
            `INSERT INTO invagent_meta (key, value) VALUES ('write_probe', '1')
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
          )
        },
        () => false,
      )
    } catch (error) {
      throw new ConfigError(`cannot write the inventory ${this.location}: ${(error as Error).message}`, {
        code: 'DB_NOT_WRITABLE',
        cause: error,
        suggestions: [
          'Grant this role INSERT/UPDATE on the inventory tables, or run with --dry-run to plan without writing.',
        ],
      })
    }
  }

  // ---- detection and scope -----------------------------------------------------------------

  async detect(rules?: readonly RuleName[]): Promise<Finding[]> {
    // Inside a transaction that may have written, only this connection sees those writes.
    const concurrent =
      this.concurrentDetection === 'always' || (this.concurrentDetection && (await this.worthASecondConnection()))
    if (this.depth > 0 || !concurrent) {
      return this.readSnapshot(() => detectAllPostgres(this.db, this.clock(), rules))
    }
    const helper = await this.helperConnection()
    return this.readSnapshot(async () => {
      const snapshot = (await this.db.one<{id: string}>('SELECT pg_export_snapshot() AS id'))!.id
      await helper.exec('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      try {
        await helper.query(`SET TRANSACTION SNAPSHOT '${snapshot.replaceAll("'", "''")}'`)
        return await detectAllPostgres(this.db, this.clock(), rules, helper)
      } finally {
        await helper.exec('COMMIT').catch(() => {})
      }
    })
  }

  /** A second connection costs a few milliseconds to open: worth it only on a large ledger. */
  private async worthASecondConnection(): Promise<boolean> {
    const estimate = await this.db.one<{n: number}>(
      `SELECT reltuples::bigint AS n FROM pg_class WHERE oid = 'transactions'::regclass`,
    )
    return (estimate?.n ?? 0) >= CONCURRENT_MIN_TRANSACTIONS
  }

  private async helperConnection(): Promise<PostgresConnection> {
    this.helper ??= PostgresConnection.connect(this.url, {applicationName: 'invagent-detect'})
    return this.helper
  }

  async detectInScope(entities: EntitySet): Promise<Finding[]> {
    return this.readSnapshot(() => detectForEntitiesPostgres(this.db, this.clock(), entities.partIds, entities.txnIds))
  }

  // ---- transactions ------------------------------------------------------------------------

  /**
   * Runs reads in one REPEATABLE READ, read-only snapshot: every query sees the same committed
   * state and nothing is locked. Inside a transaction already, the work simply joins it.
   */
  async readSnapshot<T>(work: () => Promise<T>): Promise<T> {
    if (this.depth > 0) return work()
    await this.db.exec('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    this.depth++
    try {
      const result = await work()
      await this.db.exec('COMMIT')
      return result
    } catch (error) {
      await this.db.exec('ROLLBACK').catch(() => {})
      throw error
    } finally {
      this.depth--
    }
  }

  /**
   * One short unit: a READ COMMITTED transaction (a savepoint when nested), committed when
   * `commit` approves the result and rolled back otherwise or on error. Rows read with readRows
   * inside it stay locked until it ends, and each read sees what was committed before it.
   */
  async unitOfWork<T>(work: () => Promise<T>, commit: (result: T) => boolean): Promise<T> {
    if (this.depth > 0 && !this.writing) throw new Error('a unit of work cannot start inside a read snapshot')
    const outermost = this.depth === 0
    const savepoint = `u${this.depth}`
    await this.db.exec(outermost ? 'BEGIN ISOLATION LEVEL READ COMMITTED' : `SAVEPOINT ${savepoint}`)
    this.depth++
    if (outermost) this.writing = true
    const end = async (keep: boolean) => {
      if (outermost) this.writing = false
      if (outermost) await this.db.exec(keep ? 'COMMIT' : 'ROLLBACK')
      else if (keep) await this.db.exec(`RELEASE SAVEPOINT ${savepoint}`)
      else await this.db.exec(`ROLLBACK TO SAVEPOINT ${savepoint}; RELEASE SAVEPOINT ${savepoint}`)
    }
    let result: T
    try {
      result = await work()
    } catch (error) {
      this.depth--
      await end(false).catch(() => {})
      throw error
    }
    this.depth--
    let keep = false
    try {
      keep = commit(result)
    } finally {
      await end(keep)
    }
    return result
  }
}
