import {detectAllPostgres, detectForEntitiesPostgres, ledgerBalanceOfPostgres} from '../../detect/postgres-detector.js'
import type {Finding} from '../../detect/finding.js'
import type {RuleName} from '../../tools/catalogue.js'
import {
  probeWritable,
  ToolFailure,
  type EntitySet,
  type InventoryBackend,
  type ReservationRow,
  type TransactionRow,
  type TransactionUpdate,
  TRANSACTION_ROW_COLUMNS,
  transactionRowValues,
} from '../backend.js'
import type {Dialect} from '../read-queries.js'
import {SqlReads} from '../sql-reads.js'
import {checkPostgresInventory, PostgresConnection} from './connection.js'

/** Below this many transactions a second connection for detection costs more than it saves. */
const CONCURRENT_MIN_TRANSACTIONS = 200_000

const ROW_COLUMNS = TRANSACTION_ROW_COLUMNS.join(', ')
const TRANSACTION_UPDATABLE = new Set(['status', 'posted_at', 'uom', 'part_id'])

/**
 * The reference inventory on PostgreSQL (docs/architecture.md, "Backends"). Reads of a whole
 * pass (detection) run in one REPEATABLE READ snapshot. A unit of work is one short READ
 * COMMITTED transaction (nested units are savepoints); inside it, `readRows` locks the rows it
 * reads (`SELECT … FOR UPDATE`, parts, then transactions, then reservations, each by id), so the
 * fingerprint check of src/agent/apply.ts runs under the lock and two writers of overlapping
 * scopes queue instead of deadlocking. The meaning of each write is in src/tools/write-tools.ts.
 */
export class PostgresInventory extends SqlReads implements InventoryBackend {
  protected readonly dialect: Dialect = 'postgres'
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
    super()
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

  // ---- reads (src/inventory/sql-reads.ts over src/inventory/read-queries.ts) --------------

  protected async select<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
    return this.db.query<T>(sql, [...params])
  }

  protected async selectOne<T>(sql: string, params: readonly unknown[]): Promise<T | undefined> {
    return this.db.one<T>(sql, [...params])
  }

  protected async execute(sql: string, params: readonly unknown[]): Promise<number> {
    return this.db.run(sql, [...params])
  }

  /** An array parameter, for `= ANY($n)`. */
  protected idList(ids: readonly string[]): readonly string[] {
    return ids
  }

  protected async ledgerBalance(partId: string): Promise<number> {
    return ledgerBalanceOfPostgres(this.db, partId)
  }

  /** Inside a unit of work readRows locks what it reads, in its fixed order, until the unit ends. */
  protected override lockedRead(sql: string): string {
    return this.depth > 0 && this.writing ? `${sql} FOR UPDATE` : sql
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

  async assertWritable(): Promise<void> {
    await probeWritable(
      this,
      () =>
        this.db.query(
          `INSERT INTO invagent_meta (key, value) VALUES ('write_probe', '1')
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
        ),
      'Grant this role INSERT/UPDATE on the inventory tables',
    )
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
