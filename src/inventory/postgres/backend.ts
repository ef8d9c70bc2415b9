import {detectAllPostgres, detectForEntitiesPostgres, ledgerBalanceOfPostgres} from '../../detect/postgres-detector.js'
import type {Finding} from '../../detect/finding.js'
import {RULE_INFO} from '../../detect/rules.js'
import type {RuleName} from '../../tools/catalogue.js'
import type {
  IntegrationEventRecord,
  PartRecord,
  ReservationRecord,
  ToolArgs,
  ToolResult,
  TransactionRecord,
  WriteResult,
  WriteToolName,
} from '../../tools/tools.js'
import {canonicalJson} from '../../util/canonical-json.js'
import {
  ToolFailure,
  type FindingScope,
  type InventoryBackend,
  type TransactionQuery,
  type WriteContext,
  type WriteImpact,
} from '../backend.js'
import {normalizeSku} from '../sqlite-backend.js'
import {checkPostgresInventory, PostgresConnection, type PgRow} from './connection.js'
import {PG_NORMALIZED_SKU_SQL, PG_STOCK_DELTA_SQL} from './schema.js'

/** Below this many transactions a second connection for detection costs more than it saves. */
const CONCURRENT_MIN_TRANSACTIONS = 200_000

type TransactionRow = Omit<TransactionRecord, 'stock_delta'> & {stock_delta: number | null}
type Caches = Pick<WriteResult, 'on_hand' | 'reserved'>

const TRANSACTION_COLUMNS = `t.id, t.part_id, t.sku, t.kind, t.qty, t.uom, t.status, t.source, t.external_ref,
  t.created_at, t.posted_at,
  ${PG_STOCK_DELTA_SQL} AS stock_delta`
const TRANSACTION_FROM = `transactions t LEFT JOIN parts p ON p.id = t.part_id
  LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom`

/**
 * The reference inventory on PostgreSQL. Reads of a whole pass (detection) run in one
 * REPEATABLE READ snapshot; writes run in short transactions that first lock the rows of the
 * finding's scope (`SELECT … FOR UPDATE`), so two auditors never fix the same part at once.
 * Data access is a set of small primitives (below); the meaning of each write tool is written
 * over them in previewWrite/applyWrite.
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
    const transactions = await this.db.query<TransactionRow>(
      `SELECT ${TRANSACTION_COLUMNS} FROM ${TRANSACTION_FROM} WHERE ${condition}
       ORDER BY t.created_at DESC, t.id DESC LIMIT $${params.length + 1}`,
      [...params, query.limit ?? 20],
    )
    return {transactions, total}
  }

  async getTransaction(txnId: string): Promise<TransactionRecord> {
    const row = await this.transactionRow(txnId)
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
      active_reserved: await this.activeReserved(partId),
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

  // ---- data-access primitives --------------------------------------------------------------

  private async transactionRow(txnId: string): Promise<TransactionRow | undefined> {
    return this.db.one<TransactionRow>(`SELECT ${TRANSACTION_COLUMNS} FROM ${TRANSACTION_FROM} WHERE t.id = $1`, [
      txnId,
    ])
  }

  async partExists(partId: string): Promise<boolean> {
    return (await this.db.one('SELECT 1 FROM parts WHERE id = $1', [partId])) !== undefined
  }

  async partCaches(partId: string | null): Promise<Caches> {
    if (partId === null) return {on_hand: null, reserved: null}
    const part = await this.db.one<{on_hand: number; reserved: number}>(
      'SELECT on_hand, reserved FROM parts WHERE id = $1',
      [partId],
    )
    return {on_hand: part?.on_hand ?? null, reserved: part?.reserved ?? null}
  }

  /** The factor converting `uom` into the part's unit: 1 for its own unit, null when unknown. */
  async factorOf(partId: string, uom: string): Promise<number | null> {
    const row = await this.db.one<{part_uom: string; factor: number | null}>(
      `SELECT p.uom AS part_uom, c.factor
       FROM parts p LEFT JOIN uom_conversions c ON c.part_id = p.id AND c.uom = $2 WHERE p.id = $1`,
      [partId, uom],
    )
    if (!row) return null
    return row.part_uom === uom ? 1 : row.factor
  }

  async activeReserved(partId: string): Promise<number> {
    return (await this.db.one<{n: number}>(
      `SELECT COALESCE(SUM(qty), 0) AS n FROM reservations WHERE part_id = $1 AND status = 'active'`,
      [partId],
    ))!.n
  }

  async addToPartCaches(partId: string, onHandDelta: number, reservedDelta = 0): Promise<void> {
    await this.db.query(
      'UPDATE parts SET on_hand = on_hand + $1, reserved = reserved + $2, updated_at = $3 WHERE id = $4',
      [onHandDelta, reservedDelta, this.clock(), partId],
    )
  }

  async setTransactionStatus(txnId: string, status: TransactionRecord['status'], postedAt?: number): Promise<void> {
    if (postedAt === undefined)
      await this.db.query('UPDATE transactions SET status = $1 WHERE id = $2', [status, txnId])
    else
      await this.db.query('UPDATE transactions SET status = $1, posted_at = $2 WHERE id = $3', [
        status,
        postedAt,
        txnId,
      ])
  }

  async setTransactionUom(txnId: string, uom: string): Promise<void> {
    await this.db.query('UPDATE transactions SET uom = $1 WHERE id = $2', [uom, txnId])
  }

  async setTransactionPart(txnId: string, partId: string): Promise<void> {
    await this.db.query('UPDATE transactions SET part_id = $1 WHERE id = $2', [partId, txnId])
  }

  async setReservationStatus(reservationId: string, status: ReservationRecord['status']): Promise<void> {
    await this.db.query('UPDATE reservations SET status = $1 WHERE id = $2', [status, reservationId])
  }

  async reservationRow(
    reservationId: string,
  ): Promise<{id: string; part_id: string; qty: number; status: string} | undefined> {
    return this.db.one('SELECT id, part_id, qty, status FROM reservations WHERE id = $1', [reservationId])
  }

  async insertPostedAdjustment(row: {
    id: string
    partId: string
    sku: string
    qty: number
    uom: string
    externalRef: string
    at: number
  }): Promise<void> {
    await this.db.query(
      `INSERT INTO transactions (id, part_id, sku, kind, qty, uom, status, source, external_ref, created_at, posted_at)
       VALUES ($1, $2, $3, 'adjustment', $4, $5, 'posted', 'invagent', $6, $7, $7)`,
      [row.id, row.partId, row.sku, row.qty, row.uom, row.externalRef, row.at],
    )
  }

  async recordedAction(idempotencyKey: string): Promise<WriteResult | undefined> {
    const row = await this.db.one<{result: WriteResult}>(
      'SELECT result FROM agent_actions WHERE idempotency_key = $1',
      [idempotencyKey],
    )
    return row?.result
  }

  async recordAction(tool: WriteToolName, args: unknown, result: WriteResult, context: WriteContext): Promise<void> {
    await this.db.query(
      `INSERT INTO agent_actions (idempotency_key, run_id, finding_id, tool, args, result, at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        context.idempotencyKey,
        context.runId,
        context.findingId,
        tool,
        canonicalJson(args),
        JSON.stringify(result),
        Date.now(),
      ],
    )
  }

  /**
   * Every row of a scope as stored, in a fixed order (parts, transactions, reservations, each by
   * id): what a plan's fingerprint is computed over, read again under the lock before applying.
   */
  async scopeRows(scope: FindingScope): Promise<{parts: PgRow[]; transactions: PgRow[]; reservations: PgRow[]}> {
    const rows = (table: string, ids: Set<string>) =>
      this.db.query(`SELECT * FROM ${table} WHERE id = ANY($1) ORDER BY id`, [[...ids]])
    return {
      parts: await rows('parts', scope.partIds),
      transactions: await rows('transactions', scope.txnIds),
      reservations: await rows('reservations', scope.reservationIds),
    }
  }

  /**
   * Locks the scope's rows until the transaction ends, in a fixed order (parts, transactions,
   * reservations, each by id) so that two writers locking overlapping scopes cannot deadlock.
   */
  async lockScope(scope: FindingScope): Promise<void> {
    await this.db.query('SELECT id FROM parts WHERE id = ANY($1) ORDER BY id FOR UPDATE', [[...scope.partIds]])
    await this.db.query('SELECT id FROM transactions WHERE id = ANY($1) ORDER BY id FOR UPDATE', [[...scope.txnIds]])
    await this.db.query('SELECT id FROM reservations WHERE id = ANY($1) ORDER BY id FOR UPDATE', [
      [...scope.reservationIds],
    ])
  }

  // ---- writes ------------------------------------------------------------------------------

  private async transactionOrFail(txnId: string): Promise<TransactionRow> {
    const row = await this.transactionRow(txnId)
    if (!row) throw new ToolFailure(`transaction "${txnId}" does not exist`)
    return row
  }

  /** The stock delta a transaction would have with another part or unit; null when it cannot be converted. */
  private async deltaWithUnit(txn: TransactionRow, partId: string | null, uom: string): Promise<number | null> {
    if (partId === null) return null
    const factor = await this.factorOf(partId, uom)
    return factor === null ? null : txn.qty * factor
  }

  async previewWrite(tool: WriteToolName, args: ToolArgs<WriteToolName>): Promise<WriteImpact> {
    const a = args as Record<string, unknown>
    switch (tool) {
      case 'reprocess_transaction': {
        const txn = await this.transactionOrFail(a.txn_id as string)
        return {
          partId: txn.part_id,
          onHandDelta: txn.status === 'posted' ? 0 : (txn.stock_delta ?? 0),
          reservedDelta: 0,
        }
      }
      case 'void_transaction': {
        const txn = await this.transactionOrFail(a.txn_id as string)
        return {
          partId: txn.part_id,
          onHandDelta: txn.status === 'posted' ? -(txn.stock_delta ?? 0) : 0,
          reservedDelta: 0,
        }
      }
      case 'correct_transaction_uom': {
        const txn = await this.transactionOrFail(a.txn_id as string)
        const next = (await this.deltaWithUnit(txn, txn.part_id, a.uom as string)) ?? 0
        return {
          partId: txn.part_id,
          onHandDelta: txn.status === 'posted' ? next - (txn.stock_delta ?? 0) : 0,
          reservedDelta: 0,
        }
      }
      case 'remap_transaction_part': {
        const txn = await this.transactionOrFail(a.txn_id as string)
        const next = (await this.deltaWithUnit(txn, a.part_id as string, txn.uom)) ?? 0
        return {partId: a.part_id as string, onHandDelta: txn.status === 'posted' ? next : 0, reservedDelta: 0}
      }
      case 'recompute_on_hand': {
        const part = await this.getPart(a.part_id as string)
        return {
          partId: part.id,
          onHandDelta: (await ledgerBalanceOfPostgres(this.db, part.id)) - part.on_hand,
          reservedDelta: 0,
        }
      }
      case 'recompute_reserved': {
        const balance = await this.getLedgerBalance(a.part_id as string)
        return {partId: balance.part_id, onHandDelta: 0, reservedDelta: balance.active_reserved - balance.reserved}
      }
      case 'release_reservation': {
        const reservation = await this.reservationRow(a.reservation_id as string)
        if (!reservation) throw new ToolFailure(`reservation "${String(a.reservation_id)}" does not exist`)
        return {
          partId: reservation.part_id,
          onHandDelta: 0,
          reservedDelta: reservation.status === 'active' ? -reservation.qty : 0,
        }
      }
      case 'adjust_quantity':
        await this.getPart(a.part_id as string)
        return {partId: a.part_id as string, onHandDelta: a.delta as number, reservedDelta: 0}
      case 'set_transaction_status': {
        const txn = await this.transactionOrFail(a.txn_id as string)
        return {partId: txn.part_id, onHandDelta: 0, reservedDelta: 0}
      }
    }
    throw new ToolFailure(`unknown write tool ${tool}`)
  }

  async applyWrite(tool: WriteToolName, args: ToolArgs<WriteToolName>, context: WriteContext): Promise<WriteResult> {
    const previous = await this.recordedAction(context.idempotencyKey)
    if (previous) {
      const key = context.idempotencyKey.slice(0, 12)
      const message = `already applied under idempotency key ${key}: ${previous.message}`
      return {...previous, applied: false, message}
    }
    return this.inTransaction(async () => {
      const result = await this.performWrite(tool, args as Record<string, unknown>, context)
      if (result.applied) await this.recordAction(tool, args, result, context)
      return result
    })
  }

  private async performWrite(
    tool: WriteToolName,
    a: Record<string, unknown>,
    context: WriteContext,
  ): Promise<WriteResult> {
    const now = this.clock()
    switch (tool) {
      case 'reprocess_transaction': {
        const txn = await this.transactionOrFail(a.txn_id as string)
        if (txn.status === 'posted')
          return {applied: false, message: `${txn.id} is already posted`, ...(await this.partCaches(txn.part_id))}
        if (txn.status === 'void') throw new ToolFailure(`${txn.id} is void and cannot be reprocessed`)
        if (txn.part_id === null || !(await this.partExists(txn.part_id))) {
          throw new ToolFailure(
            `reprocess failed: ${txn.id} points at no existing part (sku "${txn.sku}"); remap it first`,
          )
        }
        if (txn.stock_delta === null) {
          throw new ToolFailure(
            `reprocess failed: unit "${txn.uom}" has no conversion for part ${txn.part_id}; correct the unit first`,
          )
        }
        await this.setTransactionStatus(txn.id, 'posted', now)
        await this.addToPartCaches(txn.part_id, txn.stock_delta)
        const message = `${txn.id} posted (${txn.stock_delta >= 0 ? '+' : ''}${txn.stock_delta})`
        return {applied: true, message, ...(await this.partCaches(txn.part_id))}
      }
      case 'set_transaction_status': {
        const txn = await this.transactionOrFail(a.txn_id as string)
        if (txn.status !== a.expected_status)
          throw new ToolFailure(`${txn.id} is ${txn.status}, not ${String(a.expected_status)}: nothing changed`)
        if (txn.status === a.status)
          return {
            applied: false,
            message: `${txn.id} is already ${txn.status}`,
            ...(await this.partCaches(txn.part_id)),
          }
        await this.setTransactionStatus(txn.id, a.status as TransactionRecord['status'])
        return {
          applied: true,
          message: `${txn.id} ${txn.status} → ${String(a.status)}`,
          ...(await this.partCaches(txn.part_id)),
        }
      }
      case 'void_transaction': {
        const txn = await this.transactionOrFail(a.txn_id as string)
        if (txn.status === 'void')
          return {applied: false, message: `${txn.id} is already void`, ...(await this.partCaches(txn.part_id))}
        await this.setTransactionStatus(txn.id, 'void')
        if (txn.status === 'posted' && txn.part_id !== null && txn.stock_delta !== null)
          await this.addToPartCaches(txn.part_id, -txn.stock_delta)
        return {applied: true, message: `${txn.id} voided`, ...(await this.partCaches(txn.part_id))}
      }
      case 'recompute_on_hand': {
        const part = await this.getPart(a.part_id as string)
        const balance = await ledgerBalanceOfPostgres(this.db, part.id)
        if (balance === part.on_hand) {
          return {
            applied: false,
            message: `${part.id} on_hand already equals the ledger (${balance})`,
            ...(await this.partCaches(part.id)),
          }
        }
        await this.addToPartCaches(part.id, balance - part.on_hand)
        return {
          applied: true,
          message: `${part.id} on_hand ${part.on_hand} → ${balance}`,
          ...(await this.partCaches(part.id)),
        }
      }
      case 'recompute_reserved': {
        const part = await this.getPart(a.part_id as string)
        const active = await this.activeReserved(part.id)
        if (active === part.reserved) {
          const message = `${part.id} reserved already equals active reservations (${active})`
          return {applied: false, message, ...(await this.partCaches(part.id))}
        }
        await this.addToPartCaches(part.id, 0, active - part.reserved)
        return {
          applied: true,
          message: `${part.id} reserved ${part.reserved} → ${active}`,
          ...(await this.partCaches(part.id)),
        }
      }
      case 'release_reservation': {
        const reservation = await this.reservationRow(a.reservation_id as string)
        if (!reservation) throw new ToolFailure(`reservation "${String(a.reservation_id)}" does not exist`)
        if (reservation.status !== 'active') {
          return {
            applied: false,
            message: `${reservation.id} is already ${reservation.status}`,
            ...(await this.partCaches(reservation.part_id)),
          }
        }
        await this.setReservationStatus(reservation.id, 'released')
        await this.addToPartCaches(reservation.part_id, 0, -reservation.qty)
        return {
          applied: true,
          message: `${reservation.id} released (${reservation.qty})`,
          ...(await this.partCaches(reservation.part_id)),
        }
      }
      case 'correct_transaction_uom': {
        const txn = await this.transactionOrFail(a.txn_id as string)
        const uom = a.uom as string
        if (txn.part_id === null) throw new ToolFailure(`${txn.id} has no part; remap it before correcting its unit`)
        const next = await this.deltaWithUnit(txn, txn.part_id, uom)
        if (next === null)
          throw new ToolFailure(`unit "${uom}" is neither the unit of ${txn.part_id} nor one it has a conversion for`)
        if (uom === txn.uom)
          return {applied: false, message: `${txn.id} is already in ${uom}`, ...(await this.partCaches(txn.part_id))}
        await this.setTransactionUom(txn.id, uom)
        if (txn.status === 'posted') await this.addToPartCaches(txn.part_id, next - (txn.stock_delta ?? 0))
        return {applied: true, message: `${txn.id} unit ${txn.uom} → ${uom}`, ...(await this.partCaches(txn.part_id))}
      }
      case 'remap_transaction_part': {
        const txn = await this.transactionOrFail(a.txn_id as string)
        const target = await this.getPart(a.part_id as string)
        if (txn.part_id === target.id)
          return {
            applied: false,
            message: `${txn.id} already points at ${target.id}`,
            ...(await this.partCaches(target.id)),
          }
        const next = await this.deltaWithUnit(txn, target.id, txn.uom)
        if (txn.status === 'posted' && next === null)
          throw new ToolFailure(`unit "${txn.uom}" has no conversion for ${target.id}; correct the unit first`)
        await this.setTransactionPart(txn.id, target.id)
        if (txn.status === 'posted') {
          if (txn.part_id !== null && txn.stock_delta !== null)
            await this.addToPartCaches(txn.part_id, -txn.stock_delta)
          await this.addToPartCaches(target.id, next!)
        }
        return {
          applied: true,
          message: `${txn.id} remapped ${txn.part_id ?? '(none)'} → ${target.id}`,
          ...(await this.partCaches(target.id)),
        }
      }
      case 'adjust_quantity': {
        const part = await this.getPart(a.part_id as string)
        const delta = a.delta as number
        if (delta === 0)
          return {applied: false, message: 'a zero adjustment changes nothing', ...(await this.partCaches(part.id))}
        const id = `T-ADJ-${context.idempotencyKey.slice(0, 12)}`
        const externalRef = `ADJ-${context.idempotencyKey.slice(0, 16)}`
        await this.insertPostedAdjustment({
          id,
          partId: part.id,
          sku: part.sku,
          qty: delta,
          uom: part.uom,
          externalRef,
          at: now,
        })
        await this.addToPartCaches(part.id, delta)
        return {applied: true, message: `${part.id} adjusted by ${delta} (${id})`, ...(await this.partCaches(part.id))}
      }
    }
    throw new ToolFailure(`unknown write tool ${tool}`)
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

  async detectInScope(scope: FindingScope): Promise<Finding[]> {
    return this.readSnapshot(() => detectForEntitiesPostgres(this.db, this.clock(), scope.partIds, scope.txnIds))
  }

  async scopeOf(finding: Finding): Promise<FindingScope> {
    const scope = await this.readSnapshot(() => this.computeScope(finding))
    // Inside a unit of work the finding's rows stay locked until it commits or rolls back.
    if (this.depth > 0) await this.lockScope(scope)
    return scope
  }

  private async computeScope(finding: Finding): Promise<FindingScope> {
    const scope: FindingScope = {
      partIds: new Set(),
      txnIds: new Set(),
      reservationIds: new Set(),
      remapTargets: new Map(),
    }
    const addPart = async (partId: string) => {
      scope.partIds.add(partId)
      for (const row of await this.db.query<{id: string}>('SELECT id FROM transactions WHERE part_id = $1', [partId]))
        scope.txnIds.add(row.id)
      for (const row of await this.db.query<{id: string}>('SELECT id FROM reservations WHERE part_id = $1', [partId]))
        scope.reservationIds.add(row.id)
    }
    if (RULE_INFO[finding.rule].entity === 'part') {
      await addPart(finding.entity)
      return scope
    }
    const txn = await this.db.one<{
      id: string
      part_id: string | null
      sku: string
      source: string
      external_ref: string
    }>('SELECT id, part_id, sku, source, external_ref FROM transactions WHERE id = $1', [finding.entity])
    if (!txn) return scope
    scope.txnIds.add(txn.id)
    if (txn.part_id !== null && (await this.partExists(txn.part_id))) scope.partIds.add(txn.part_id)
    if (finding.rule === 'duplicate_posting') {
      const rows = await this.db.query<{id: string}>(
        'SELECT id FROM transactions WHERE source = $1 AND external_ref = $2',
        [txn.source, txn.external_ref],
      )
      for (const row of rows) scope.txnIds.add(row.id)
    }
    const candidates = new Set((await this.findPartsBySku(txn.sku)).matches.map((match) => match.part_id))
    if (candidates.size === 1) {
      const [target] = candidates
      scope.remapTargets.set(txn.id, target)
      scope.partIds.add(target)
    }
    return scope
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
   * A short write transaction: the scope's rows are locked first (`SELECT … FOR UPDATE`), then
   * `work` runs; everything commits when `commit` approves the result, and rolls back otherwise
   * or on error.
   */
  async writeUnit<T>(
    scope: FindingScope,
    work: () => Promise<T>,
    commit: (result: T) => boolean = () => true,
  ): Promise<T> {
    return this.transaction(
      'BEGIN ISOLATION LEVEL READ COMMITTED',
      async () => {
        await this.lockScope(scope)
        return work()
      },
      commit,
    )
  }

  /**
   * The current audit loop's unit: one transaction per finding, in REPEATABLE READ so that the
   * engine's reads and the validation see one consistent state plus its own writes; the
   * finding's rows are locked as soon as its scope is known (scopeOf).
   */
  async unitOfWork<T>(work: () => Promise<T>, commit: (result: T) => boolean): Promise<T> {
    return this.transaction('BEGIN ISOLATION LEVEL REPEATABLE READ', work, commit)
  }

  private async transaction<T>(begin: string, work: () => Promise<T>, commit: (result: T) => boolean): Promise<T> {
    if (this.depth > 0) throw new Error('units of work do not nest')
    await this.db.exec(begin)
    this.depth++
    let result: T
    try {
      result = await work()
    } catch (error) {
      this.depth--
      await this.db.exec('ROLLBACK').catch(() => {})
      throw error
    }
    this.depth--
    let keep = false
    try {
      keep = commit(result)
    } finally {
      await this.db.exec(keep ? 'COMMIT' : 'ROLLBACK')
    }
    return result
  }

  /** One write: its own transaction outside a unit of work, a savepoint inside one. */
  private async inTransaction<T>(work: () => Promise<T>): Promise<T> {
    if (this.depth === 0) return this.transaction('BEGIN', work, () => true)
    const name = `w${this.depth}`
    await this.db.exec(`SAVEPOINT ${name}`)
    this.depth++
    try {
      const result = await work()
      this.depth--
      await this.db.exec(`RELEASE SAVEPOINT ${name}`)
      return result
    } catch (error) {
      this.depth--
      await this.db.exec(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`)
      throw error
    }
  }
}
