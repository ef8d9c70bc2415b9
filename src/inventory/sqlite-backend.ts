import {detectAll, detectForEntities, ledgerBalanceOf} from '../detect/sqlite-detector.js'
import type {Finding} from '../detect/finding.js'
import {RULE_INFO} from '../detect/rules.js'
import type {RuleName} from '../tools/catalogue.js'
import type {
  IntegrationEventRecord,
  PartRecord,
  ReservationRecord,
  ToolArgs,
  ToolResult,
  TransactionRecord,
  WriteResult,
  WriteToolName,
} from '../tools/tools.js'
import {canonicalJson} from '../util/canonical-json.js'
import {ToolFailure, type FindingScope, type InventoryBackend, type TransactionQuery, type WriteContext, type WriteImpact} from './backend.js'
import {openInventoryDatabase, type SqliteConnection} from './sqlite-connection.js'
import {NORMALIZED_SKU_SQL, STOCK_DELTA_SQL} from './schema.js'

type TransactionRow = Omit<TransactionRecord, 'stock_delta'> & {stock_delta: number | null}

const TRANSACTION_COLUMNS = `t.id, t.part_id, t.sku, t.kind, t.qty, t.uom, t.status, t.source, t.external_ref, t.created_at, t.posted_at, ${STOCK_DELTA_SQL} AS stock_delta`
const TRANSACTION_FROM = 'transactions t LEFT JOIN parts p ON p.id = t.part_id LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom'

/** The same normalization as NORMALIZED_SKU_SQL, for a SKU as received. */
export function normalizeSku(sku: string): string {
  return sku.toUpperCase().replace(/[-_ .]/g, '')
}

/** The embedded reference inventory on node:sqlite. */
export class SqliteInventory implements InventoryBackend {
  readonly location: string
  private readonly frozenClock: number | undefined
  private depth = 0
  private spillDisabled = false

  readonly db: SqliteConnection

  private constructor(db: SqliteConnection) {
    this.db = db
    this.location = db.path
    const clock = db.get<{value: string}>(`SELECT value FROM invagent_meta WHERE key = 'clock'`)
    this.frozenClock = clock ? Number(clock.value) : undefined
  }

  static open(path: string, options: {readOnly?: boolean} = {}): SqliteInventory {
    return new SqliteInventory(openInventoryDatabase(path, options))
  }

  clock(): number {
    return this.frozenClock ?? Date.now()
  }

  close(): void {
    this.db.close()
  }

  // ---- reads -------------------------------------------------------------------------------

  async getPart(partId: string): Promise<PartRecord> {
    return this.partOrFail(partId)
  }

  private partOrFail(partId: string): PartRecord {
    const row = this.db.get<Omit<PartRecord, 'conversions' | 'aliases'>>('SELECT id, sku, name, uom, on_hand, reserved, location, updated_at FROM parts WHERE id = ?', partId)
    if (!row) throw new ToolFailure(`part "${partId}" does not exist`)
    return {
      ...row,
      conversions: this.db.all<{uom: string; factor: number}>('SELECT uom, factor FROM uom_conversions WHERE part_id = ? ORDER BY uom', partId),
      aliases: this.db.all<{alias: string}>('SELECT alias FROM sku_aliases WHERE part_id = ? ORDER BY alias', partId).map((row) => row.alias),
    }
  }

  async findPartsBySku(sku: string): Promise<ToolResult<'find_part_by_sku'>> {
    const matches: ToolResult<'find_part_by_sku'>['matches'] = []
    const exact = this.db.get<{id: string; sku: string}>('SELECT id, sku FROM parts WHERE sku = ?', sku)
    if (exact) matches.push({part_id: exact.id, sku: exact.sku, match: 'exact'})
    const alias = this.db.get<{id: string; sku: string}>('SELECT p.id AS id, p.sku AS sku FROM sku_aliases a JOIN parts p ON p.id = a.part_id WHERE a.alias = ?', sku)
    if (alias) matches.push({part_id: alias.id, sku: alias.sku, match: 'alias'})
    const normalized = normalizeSku(sku)
    if (normalized.length > 0) {
      for (const row of this.db.all<{id: string; sku: string}>(`SELECT id, sku FROM parts WHERE ${NORMALIZED_SKU_SQL} = ?`, normalized)) {
        if (!matches.some((match) => match.part_id === row.id)) matches.push({part_id: row.id, sku: row.sku, match: 'normalized'})
      }
    }
    return {matches}
  }

  async listTransactions(query: TransactionQuery): Promise<ToolResult<'list_transactions'>> {
    if (query.partId === undefined && query.externalRef === undefined) throw new ToolFailure('give part_id or external_ref')
    const where: string[] = []
    const params: Array<string | number> = []
    if (query.partId !== undefined) (where.push('t.part_id = ?'), params.push(query.partId))
    if (query.externalRef !== undefined) (where.push('t.external_ref = ?'), params.push(query.externalRef))
    if (query.status !== undefined) (where.push('t.status = ?'), params.push(query.status))
    if (query.kind !== undefined) (where.push('t.kind = ?'), params.push(query.kind))
    const condition = where.join(' AND ')
    const total = this.db.get<{n: number}>(`SELECT count(*) AS n FROM transactions t WHERE ${condition}`, ...params)!.n
    const transactions = this.db.all<TransactionRow>(`SELECT ${TRANSACTION_COLUMNS} FROM ${TRANSACTION_FROM} WHERE ${condition} ORDER BY t.created_at DESC, t.id DESC LIMIT ?`, ...params, query.limit ?? 20)
    return {transactions, total}
  }

  async getTransaction(txnId: string): Promise<TransactionRecord> {
    return this.transactionOrFail(txnId)
  }

  private transactionOrFail(txnId: string): TransactionRecord {
    const row = this.db.get<TransactionRow>(`SELECT ${TRANSACTION_COLUMNS} FROM ${TRANSACTION_FROM} WHERE t.id = ?`, txnId)
    if (!row) throw new ToolFailure(`transaction "${txnId}" does not exist`)
    return row
  }

  async getLedgerBalance(partId: string): Promise<ToolResult<'get_ledger_balance'>> {
    const part = this.partOrFail(partId)
    const stats = this.db.get<{posted: number; unconvertible: number; largest: number}>(
      `SELECT count(*) AS posted, COALESCE(SUM(${STOCK_DELTA_SQL} IS NULL), 0) AS unconvertible, COALESCE(MAX(abs(${STOCK_DELTA_SQL})), 0) AS largest
       FROM ${TRANSACTION_FROM} WHERE t.part_id = ? AND t.status = 'posted'`,
      partId,
    )!
    const active = this.db.get<{n: number}>(`SELECT COALESCE(SUM(qty), 0) AS n FROM reservations WHERE part_id = ? AND status = 'active'`, partId)!.n
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
    return this.db.all<IntegrationEventRecord>('SELECT id, txn_id, at, level, message FROM integration_events WHERE txn_id = ? ORDER BY at, id', txnId)
  }

  async listReservations(partId: string, status?: ReservationRecord['status']): Promise<ReservationRecord[]> {
    return this.db.all<ReservationRecord>(
      `SELECT r.id, r.part_id, r.qty, r.order_ref, r.status, r.created_at,
        COALESCE((SELECT -SUM(${STOCK_DELTA_SQL}) FROM ${TRANSACTION_FROM} WHERE t.external_ref = r.order_ref AND t.part_id = r.part_id AND t.status = 'posted' AND t.kind = 'issue'), 0) AS shipped_qty
       FROM reservations r WHERE r.part_id = ? AND (? IS NULL OR r.status = ?) ORDER BY r.created_at, r.id`,
      partId,
      status ?? null,
      status ?? null,
    )
  }

  // ---- writes ------------------------------------------------------------------------------

  private deltaWithUnit(txn: TransactionRecord, partId: string | null, uom: string): number | null {
    if (partId === null) return null
    const part = this.db.get<{uom: string}>('SELECT uom FROM parts WHERE id = ?', partId)
    if (!part) return null
    if (uom === part.uom) return txn.qty
    const conversion = this.db.get<{factor: number}>('SELECT factor FROM uom_conversions WHERE part_id = ? AND uom = ?', partId, uom)
    return conversion ? txn.qty * conversion.factor : null
  }

  async previewWrite(tool: WriteToolName, args: ToolArgs<WriteToolName>): Promise<WriteImpact> {
    const a = args as Record<string, unknown>
    switch (tool) {
      case 'reprocess_transaction': {
        const txn = this.transactionOrFail(a.txn_id as string)
        return {partId: txn.part_id, onHandDelta: txn.status === 'posted' ? 0 : (txn.stock_delta ?? 0), reservedDelta: 0}
      }
      case 'void_transaction': {
        const txn = this.transactionOrFail(a.txn_id as string)
        return {partId: txn.part_id, onHandDelta: txn.status === 'posted' ? -(txn.stock_delta ?? 0) : 0, reservedDelta: 0}
      }
      case 'correct_transaction_uom': {
        const txn = this.transactionOrFail(a.txn_id as string)
        const next = this.deltaWithUnit(txn, txn.part_id, a.uom as string) ?? 0
        return {partId: txn.part_id, onHandDelta: txn.status === 'posted' ? next - (txn.stock_delta ?? 0) : 0, reservedDelta: 0}
      }
      case 'remap_transaction_part': {
        const txn = this.transactionOrFail(a.txn_id as string)
        const next = this.deltaWithUnit(txn, a.part_id as string, txn.uom) ?? 0
        return {partId: a.part_id as string, onHandDelta: txn.status === 'posted' ? next : 0, reservedDelta: 0}
      }
      case 'recompute_on_hand': {
        const part = this.partOrFail(a.part_id as string)
        return {partId: part.id, onHandDelta: ledgerBalanceOf(this.db, part.id) - part.on_hand, reservedDelta: 0}
      }
      case 'recompute_reserved': {
        const balance = await this.getLedgerBalance(a.part_id as string)
        return {partId: balance.part_id, onHandDelta: 0, reservedDelta: balance.active_reserved - balance.reserved}
      }
      case 'release_reservation': {
        const reservation = this.db.get<{part_id: string; qty: number; status: string}>('SELECT part_id, qty, status FROM reservations WHERE id = ?', a.reservation_id as string)
        if (!reservation) throw new ToolFailure(`reservation "${String(a.reservation_id)}" does not exist`)
        return {partId: reservation.part_id, onHandDelta: 0, reservedDelta: reservation.status === 'active' ? -reservation.qty : 0}
      }
      case 'adjust_quantity':
        this.partOrFail(a.part_id as string)
        return {partId: a.part_id as string, onHandDelta: a.delta as number, reservedDelta: 0}
      case 'set_transaction_status': {
        const txn = this.transactionOrFail(a.txn_id as string)
        return {partId: txn.part_id, onHandDelta: 0, reservedDelta: 0}
      }
    }
    throw new ToolFailure(`unknown write tool ${tool}`)
  }

  async applyWrite(tool: WriteToolName, args: ToolArgs<WriteToolName>, context: WriteContext): Promise<WriteResult> {
    const previous = this.db.get<{result: string}>('SELECT result FROM agent_actions WHERE idempotency_key = ?', context.idempotencyKey)
    if (previous) {
      const recorded = JSON.parse(previous.result) as WriteResult
      return {...recorded, applied: false, message: `already applied under idempotency key ${context.idempotencyKey.slice(0, 12)}: ${recorded.message}`}
    }
    return this.inTransaction(() => {
      const result = this.performWrite(tool, args as Record<string, unknown>, context)
      if (result.applied) {
        this.db.run(
          'INSERT INTO agent_actions (idempotency_key, run_id, finding_id, tool, args, result, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
          context.idempotencyKey,
          context.runId,
          context.findingId,
          tool,
          canonicalJson(args),
          JSON.stringify(result),
          Date.now(),
        )
      }
      return result
    })
  }

  private touchPart(partId: string, onHandDelta: number, reservedDelta = 0): void {
    this.db.run('UPDATE parts SET on_hand = on_hand + ?, reserved = reserved + ?, updated_at = ? WHERE id = ?', onHandDelta, reservedDelta, this.clock(), partId)
  }

  private caches(partId: string | null): Pick<WriteResult, 'on_hand' | 'reserved'> {
    const part = partId === null ? undefined : this.db.get<{on_hand: number; reserved: number}>('SELECT on_hand, reserved FROM parts WHERE id = ?', partId)
    return {on_hand: part?.on_hand ?? null, reserved: part?.reserved ?? null}
  }

  private performWrite(tool: WriteToolName, a: Record<string, unknown>, context: WriteContext): WriteResult {
    const now = this.clock()
    switch (tool) {
      case 'reprocess_transaction': {
        const txn = this.transactionOrFail(a.txn_id as string)
        if (txn.status === 'posted') return {applied: false, message: `${txn.id} is already posted`, ...this.caches(txn.part_id)}
        if (txn.status === 'void') throw new ToolFailure(`${txn.id} is void and cannot be reprocessed`)
        if (txn.part_id === null || !this.db.get('SELECT 1 FROM parts WHERE id = ?', txn.part_id)) {
          throw new ToolFailure(`reprocess failed: ${txn.id} points at no existing part (sku "${txn.sku}"); remap it first`)
        }
        if (txn.stock_delta === null) throw new ToolFailure(`reprocess failed: unit "${txn.uom}" has no conversion for part ${txn.part_id}; correct the unit first`)
        this.db.run(`UPDATE transactions SET status = 'posted', posted_at = ? WHERE id = ?`, now, txn.id)
        this.touchPart(txn.part_id, txn.stock_delta)
        return {applied: true, message: `${txn.id} posted (${txn.stock_delta >= 0 ? '+' : ''}${txn.stock_delta})`, ...this.caches(txn.part_id)}
      }
      case 'set_transaction_status': {
        const txn = this.transactionOrFail(a.txn_id as string)
        if (txn.status !== a.expected_status) throw new ToolFailure(`${txn.id} is ${txn.status}, not ${String(a.expected_status)}: nothing changed`)
        if (txn.status === a.status) return {applied: false, message: `${txn.id} is already ${txn.status}`, ...this.caches(txn.part_id)}
        this.db.run('UPDATE transactions SET status = ? WHERE id = ?', a.status as string, txn.id)
        return {applied: true, message: `${txn.id} ${txn.status} → ${String(a.status)}`, ...this.caches(txn.part_id)}
      }
      case 'void_transaction': {
        const txn = this.transactionOrFail(a.txn_id as string)
        if (txn.status === 'void') return {applied: false, message: `${txn.id} is already void`, ...this.caches(txn.part_id)}
        this.db.run(`UPDATE transactions SET status = 'void' WHERE id = ?`, txn.id)
        if (txn.status === 'posted' && txn.part_id !== null && txn.stock_delta !== null) this.touchPart(txn.part_id, -txn.stock_delta)
        return {applied: true, message: `${txn.id} voided`, ...this.caches(txn.part_id)}
      }
      case 'recompute_on_hand': {
        const part = this.partOrFail(a.part_id as string)
        const balance = ledgerBalanceOf(this.db, part.id)
        if (balance === part.on_hand) return {applied: false, message: `${part.id} on_hand already equals the ledger (${balance})`, ...this.caches(part.id)}
        this.touchPart(part.id, balance - part.on_hand)
        return {applied: true, message: `${part.id} on_hand ${part.on_hand} → ${balance}`, ...this.caches(part.id)}
      }
      case 'recompute_reserved': {
        const part = this.partOrFail(a.part_id as string)
        const active = this.db.get<{n: number}>(`SELECT COALESCE(SUM(qty), 0) AS n FROM reservations WHERE part_id = ? AND status = 'active'`, part.id)!.n
        if (active === part.reserved) return {applied: false, message: `${part.id} reserved already equals active reservations (${active})`, ...this.caches(part.id)}
        this.touchPart(part.id, 0, active - part.reserved)
        return {applied: true, message: `${part.id} reserved ${part.reserved} → ${active}`, ...this.caches(part.id)}
      }
      case 'release_reservation': {
        const reservation = this.db.get<{id: string; part_id: string; qty: number; status: string}>('SELECT id, part_id, qty, status FROM reservations WHERE id = ?', a.reservation_id as string)
        if (!reservation) throw new ToolFailure(`reservation "${String(a.reservation_id)}" does not exist`)
        if (reservation.status !== 'active') return {applied: false, message: `${reservation.id} is already ${reservation.status}`, ...this.caches(reservation.part_id)}
        this.db.run(`UPDATE reservations SET status = 'released' WHERE id = ?`, reservation.id)
        this.touchPart(reservation.part_id, 0, -reservation.qty)
        return {applied: true, message: `${reservation.id} released (${reservation.qty})`, ...this.caches(reservation.part_id)}
      }
      case 'correct_transaction_uom': {
        const txn = this.transactionOrFail(a.txn_id as string)
        const uom = a.uom as string
        if (txn.part_id === null) throw new ToolFailure(`${txn.id} has no part; remap it before correcting its unit`)
        const next = this.deltaWithUnit(txn, txn.part_id, uom)
        if (next === null) throw new ToolFailure(`unit "${uom}" is neither the unit of ${txn.part_id} nor one it has a conversion for`)
        if (uom === txn.uom) return {applied: false, message: `${txn.id} is already in ${uom}`, ...this.caches(txn.part_id)}
        this.db.run('UPDATE transactions SET uom = ? WHERE id = ?', uom, txn.id)
        if (txn.status === 'posted') this.touchPart(txn.part_id, next - (txn.stock_delta ?? 0))
        return {applied: true, message: `${txn.id} unit ${txn.uom} → ${uom}`, ...this.caches(txn.part_id)}
      }
      case 'remap_transaction_part': {
        const txn = this.transactionOrFail(a.txn_id as string)
        const target = this.partOrFail(a.part_id as string)
        if (txn.part_id === target.id) return {applied: false, message: `${txn.id} already points at ${target.id}`, ...this.caches(target.id)}
        const next = this.deltaWithUnit(txn, target.id, txn.uom)
        if (txn.status === 'posted' && next === null) throw new ToolFailure(`unit "${txn.uom}" has no conversion for ${target.id}; correct the unit first`)
        this.db.run('UPDATE transactions SET part_id = ? WHERE id = ?', target.id, txn.id)
        if (txn.status === 'posted') {
          if (txn.part_id !== null && txn.stock_delta !== null) this.touchPart(txn.part_id, -txn.stock_delta)
          this.touchPart(target.id, next!)
        }
        return {applied: true, message: `${txn.id} remapped ${txn.part_id ?? '(none)'} → ${target.id}`, ...this.caches(target.id)}
      }
      case 'adjust_quantity': {
        const part = this.partOrFail(a.part_id as string)
        const delta = a.delta as number
        if (delta === 0) return {applied: false, message: 'a zero adjustment changes nothing', ...this.caches(part.id)}
        const id = `T-ADJ-${context.idempotencyKey.slice(0, 12)}`
        this.db.run(
          `INSERT INTO transactions (id, part_id, sku, kind, qty, uom, status, source, external_ref, created_at, posted_at) VALUES (?, ?, ?, 'adjustment', ?, ?, 'posted', 'invagent', ?, ?, ?)`,
          id, part.id, part.sku, delta, part.uom, `ADJ-${context.idempotencyKey.slice(0, 16)}`, now, now,
        )
        this.touchPart(part.id, delta)
        return {applied: true, message: `${part.id} adjusted by ${delta} (${id})`, ...this.caches(part.id)}
      }
    }
    throw new ToolFailure(`unknown write tool ${tool}`)
  }

  // ---- detection and scope -----------------------------------------------------------------

  async detect(rules?: readonly RuleName[]): Promise<Finding[]> {
    return detectAll(this.db, this.clock(), rules)
  }

  async detectInScope(scope: FindingScope): Promise<Finding[]> {
    return detectForEntities(this.db, this.clock(), scope.partIds, scope.txnIds)
  }

  async scopeOf(finding: Finding): Promise<FindingScope> {
    const scope: FindingScope = {partIds: new Set(), txnIds: new Set(), reservationIds: new Set(), remapTargets: new Map()}
    const addPart = (partId: string) => {
      scope.partIds.add(partId)
      for (const row of this.db.all<{id: string}>('SELECT id FROM transactions WHERE part_id = ?', partId)) scope.txnIds.add(row.id)
      for (const row of this.db.all<{id: string}>('SELECT id FROM reservations WHERE part_id = ?', partId)) scope.reservationIds.add(row.id)
    }
    if (RULE_INFO[finding.rule].entity === 'part') {
      addPart(finding.entity)
      return scope
    }
    const txn = this.db.get<{id: string; part_id: string | null; sku: string; source: string; external_ref: string}>('SELECT id, part_id, sku, source, external_ref FROM transactions WHERE id = ?', finding.entity)
    if (!txn) return scope
    scope.txnIds.add(txn.id)
    if (txn.part_id !== null && this.db.get('SELECT 1 FROM parts WHERE id = ?', txn.part_id)) scope.partIds.add(txn.part_id)
    if (finding.rule === 'duplicate_posting') {
      for (const row of this.db.all<{id: string}>('SELECT id FROM transactions WHERE source = ? AND external_ref = ?', txn.source, txn.external_ref)) scope.txnIds.add(row.id)
    }
    const candidates = new Set((await this.findPartsBySku(txn.sku)).matches.map((match) => match.part_id))
    if (candidates.size === 1) {
      const [target] = candidates
      scope.remapTargets.set(txn.id, target)
      scope.partIds.add(target)
    }
    return scope
  }

  // ---- units of work -----------------------------------------------------------------------

  private inTransaction<T>(work: () => T): T {
    const name = `w${this.depth}`
    this.db.exec(`SAVEPOINT ${name}`)
    this.depth++
    try {
      const result = work()
      this.depth--
      this.db.exec(`RELEASE ${name}`)
      return result
    } catch (error) {
      this.depth--
      this.db.exec(`ROLLBACK TO ${name}; RELEASE ${name}`)
      throw error
    }
  }

  async unitOfWork<T>(work: () => Promise<T>, commit: (result: T) => boolean): Promise<T> {
    if (this.depth > 0) throw new Error('units of work do not nest')
    if (!this.spillDisabled) {
      // Keep uncommitted pages in memory, so a rolled-back unit never touches the database file.
      this.db.exec('PRAGMA cache_spill = OFF')
      this.spillDisabled = true
    }
    this.db.exec('BEGIN IMMEDIATE')
    this.depth++
    let result: T
    try {
      result = await work()
    } catch (error) {
      this.depth--
      this.db.exec('ROLLBACK')
      throw error
    }
    this.depth--
    let keep = false
    try {
      keep = commit(result)
    } finally {
      this.db.exec(keep ? 'COMMIT' : 'ROLLBACK')
    }
    return result
  }
}
