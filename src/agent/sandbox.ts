import type {Finding} from '../detect/finding.js'
import {RULE_INFO} from '../detect/rules.js'
import {
  ToolFailure,
  type AgentAction,
  type EntitySet,
  type InventoryBackend,
  type ReservationRow,
  type RowSelection,
  type ScopeRows,
  type TransactionQuery,
  type TransactionRow,
  type TransactionUpdate,
} from '../inventory/backend.js'
import {SqliteInventory} from '../inventory/sqlite-backend.js'
import type {RuleName} from '../tools/catalogue.js'
import type {
  IntegrationEventRecord,
  PartRecord,
  ReservationRecord,
  ToolResult,
  TransactionRecord,
} from '../tools/tools.js'

/*
 * The working copy a plan is made in (docs/architecture.md, "Plan"). It is an in-memory SQLite
 * inventory that starts empty and copies rows from the live inventory the first time a read
 * needs them (a part, a part's whole ledger, a transaction, the transactions of an external
 * reference). Writes land only in the copy, and later reads see them. Nothing on the live
 * inventory is locked or written while the engine thinks: each copy is one short read.
 *
 * Every live row copied is remembered as first seen; together with the answers of the reads
 * that go straight to the live inventory (SKU lookups, integration events), they are what the
 * plan read, and their digest is the plan's fingerprint.
 */

/** What a plan read from the live inventory: re-reading it later tells whether the plan is stale. */
export interface PlanReads {
  selection: {parts: string[]; ledgers: string[]; transactions: string[]; externalRefs: string[]}
  skus: string[]
  events: string[]
}

export interface SeenLiveData {
  rows: ScopeRows
  skus: Record<string, ToolResult<'find_part_by_sku'>>
  events: Record<string, IntegrationEventRecord[]>
}

const TABLES = ['parts', 'uom_conversions', 'sku_aliases', 'transactions', 'reservations'] as const

function rowKey(table: (typeof TABLES)[number], row: Record<string, unknown>): string {
  if (table === 'uom_conversions') return `${String(row.part_id)}\u0000${String(row.uom)}`
  if (table === 'sku_aliases') return String(row.alias)
  return String(row.id)
}

/** Rows sorted by key within each table, duplicates dropped: one canonical form for digests and diffs. */
export function canonicalRows(rows: ScopeRows): ScopeRows {
  const sorted = {} as Record<(typeof TABLES)[number], unknown[]>
  for (const table of TABLES) {
    const byKey = new Map<string, Record<string, unknown>>()
    for (const row of rows[table] as unknown as Array<Record<string, unknown>>) byKey.set(rowKey(table, row), row)
    sorted[table] = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row)
  }
  return sorted as unknown as ScopeRows
}

/** The rows that differ between two canonical snapshots, as `table key: what happened`. */
export function diffRows(before: ScopeRows, after: ScopeRows): string[] {
  const changes: string[] = []
  for (const table of TABLES) {
    const old = new Map(
      (before[table] as unknown as Array<Record<string, unknown>>).map((row) => [rowKey(table, row), row]),
    )
    const now = new Map(
      (after[table] as unknown as Array<Record<string, unknown>>).map((row) => [rowKey(table, row), row]),
    )
    for (const [key, row] of old) {
      const current = now.get(key)
      if (!current) changes.push(`${table} ${key.replace('\u0000', '/')}: gone`)
      else {
        const fields = Object.keys(row).filter((field) => row[field] !== current[field])
        if (fields.length > 0) {
          changes.push(
            `${table} ${key.replace('\u0000', '/')}: ` +
              fields
                .map((field) => `${field} ${JSON.stringify(row[field])} → ${JSON.stringify(current[field])}`)
                .join(', '),
          )
        }
      }
    }
    for (const key of now.keys()) if (!old.has(key)) changes.push(`${table} ${key.replace('\u0000', '/')}: new`)
  }
  return changes
}

function emptySelection() {
  return {
    parts: new Set<string>(),
    ledgers: new Set<string>(),
    transactions: new Set<string>(),
    externalRefs: new Set<string>(),
  }
}

function emptyRows(): ScopeRows {
  return {parts: [], uom_conversions: [], sku_aliases: [], transactions: [], reservations: []}
}

/** The live inventory seen through a sandbox: reads copy rows in on first use, writes stay here. */
export class SandboxInventory implements InventoryBackend {
  readonly location: string
  private readonly live: InventoryBackend
  private readonly memory: SqliteInventory
  /** What the plan asked the live inventory for: its selection, read again before applying. */
  private asked = emptySelection()
  /** What is here already, however it came (a transaction may come with its part's ledger). */
  private present = {parts: new Set<string>(), transactions: new Set<string>()}
  private seen: Record<(typeof TABLES)[number], Map<string, unknown>> = this.freshSeen()
  private skus = new Map<string, ToolResult<'find_part_by_sku'>>()
  private events = new Map<string, IntegrationEventRecord[]>()

  /** One sandbox serves a whole run: `reset` empties it between findings, its compiled statements stay. */
  constructor(live: InventoryBackend) {
    this.live = live
    this.location = `sandbox of ${live.location}`
    this.memory = SqliteInventory.inMemory(live.clock())
  }

  private freshSeen(): Record<(typeof TABLES)[number], Map<string, unknown>> {
    return {
      parts: new Map(),
      uom_conversions: new Map(),
      sku_aliases: new Map(),
      transactions: new Map(),
      reservations: new Map(),
    }
  }

  /** Empties the sandbox for the next finding, with the live inventory's clock as of now. */
  reset(): void {
    this.memory.clearRows()
    this.memory.freezeClock(this.live.clock())
    this.asked = emptySelection()
    this.present = {parts: new Set(), transactions: new Set()}
    this.seen = this.freshSeen()
    this.skus = new Map()
    this.events = new Map()
  }

  clock(): number {
    return this.memory.clock()
  }

  /**
   * Copies in whatever part of the selection is not here yet, and the part rows (units and
   * conversions) of the transactions that came, which their stock deltas need.
   */
  async cover(selection: RowSelection): Promise<void> {
    const missing = {
      parts: (selection.parts ?? []).filter((id) => !this.present.parts.has(id) && !this.asked.parts.has(id)),
      ledgers: (selection.ledgers ?? []).filter((id) => !this.asked.ledgers.has(id)),
      transactions: (selection.transactions ?? []).filter(
        (id) => !this.present.transactions.has(id) && !this.asked.transactions.has(id),
      ),
      externalRefs: (selection.externalRefs ?? []).filter((ref) => !this.asked.externalRefs.has(ref)),
    }
    if (missing.parts.length + missing.ledgers.length + missing.transactions.length + missing.externalRefs.length === 0)
      return
    for (const key of ['parts', 'ledgers', 'transactions', 'externalRefs'] as const)
      for (const id of missing[key]) this.asked[key].add(id)
    const rows = await this.live.readRows(missing)
    const fresh: ScopeRows = {
      ...rows,
      parts: [],
      uom_conversions: [],
      sku_aliases: [],
      transactions: [],
      reservations: [],
    }
    for (const table of TABLES) {
      for (const row of rows[table] as unknown as Array<Record<string, unknown>>) {
        const key = rowKey(table, row)
        if (this.seen[table].has(key)) continue
        // Rows seen before stay as they are here: the sandbox's writes to them must not be undone.
        this.seen[table].set(key, row)
        ;(fresh[table] as unknown as Array<Record<string, unknown>>).push(row)
      }
    }
    for (const id of [...missing.parts, ...missing.ledgers]) this.present.parts.add(id)
    for (const row of rows.transactions) this.present.transactions.add(row.id)
    this.memory.insertRows(fresh)
    const parts = [
      ...new Set(
        rows.transactions
          .map((row) => row.part_id)
          .filter((id): id is string => id !== null && !this.present.parts.has(id)),
      ),
    ]
    if (parts.length > 0) await this.cover({parts})
  }

  /** What the plan read from the live inventory so far, and the rows as it first saw them. */
  reads(): {reads: PlanReads; seen: SeenLiveData} {
    const sorted = (values: Iterable<string>) => [...values].sort()
    const rows = emptyRows() as unknown as Record<string, unknown[]>
    for (const table of TABLES) rows[table] = [...this.seen[table].values()]
    return {
      reads: {
        selection: {
          parts: sorted(this.asked.parts),
          ledgers: sorted(this.asked.ledgers),
          transactions: sorted(this.asked.transactions),
          externalRefs: sorted(this.asked.externalRefs),
        },
        skus: sorted(this.skus.keys()),
        events: sorted(this.events.keys()),
      },
      seen: {
        rows: canonicalRows(rows as unknown as ScopeRows),
        skus: Object.fromEntries(this.skus),
        events: Object.fromEntries(this.events),
      },
    }
  }

  // ---- reads -------------------------------------------------------------------------------

  async getPart(partId: string): Promise<PartRecord> {
    await this.cover({parts: [partId]})
    return this.memory.getPart(partId)
  }

  async findPartsBySku(sku: string): Promise<ToolResult<'find_part_by_sku'>> {
    // SKUs and aliases are never written by a tool: the live answer is the answer.
    let result = this.skus.get(sku)
    if (!result) {
      result = await this.live.findPartsBySku(sku)
      this.skus.set(sku, result)
    }
    return result
  }

  async listTransactions(query: TransactionQuery): Promise<ToolResult<'list_transactions'>> {
    if (query.partId !== undefined) await this.cover({ledgers: [query.partId]})
    else if (query.externalRef !== undefined) await this.cover({externalRefs: [query.externalRef]})
    return this.memory.listTransactions(query)
  }

  async getTransaction(txnId: string): Promise<TransactionRecord> {
    await this.cover({transactions: [txnId]})
    return this.memory.getTransaction(txnId)
  }

  async getLedgerBalance(partId: string): Promise<ToolResult<'get_ledger_balance'>> {
    await this.cover({ledgers: [partId]})
    return this.memory.getLedgerBalance(partId)
  }

  async getIntegrationEvents(txnId: string): Promise<IntegrationEventRecord[]> {
    let events = this.events.get(txnId)
    if (!events) {
      events = await this.live.getIntegrationEvents(txnId)
      this.events.set(txnId, events)
    }
    return events
  }

  async listReservations(partId: string, status?: ReservationRecord['status']): Promise<ReservationRecord[]> {
    await this.cover({ledgers: [partId]})
    return this.memory.listReservations(partId, status)
  }

  async getReservation(reservationId: string): Promise<ReservationRow> {
    try {
      return await this.memory.getReservation(reservationId)
    } catch (error) {
      if (!(error instanceof ToolFailure)) throw error
    }
    // Not copied yet: its part's ledger brings it (and every reservation beside it).
    const live = await this.live.getReservation(reservationId)
    await this.cover({ledgers: [live.part_id]})
    return this.memory.getReservation(reservationId)
  }

  async readRows(selection: RowSelection): Promise<ScopeRows> {
    await this.cover(selection)
    return this.memory.readRows(selection)
  }

  // ---- writes: only ever to the copy -------------------------------------------------------

  updateTransaction(txnId: string, fields: TransactionUpdate): Promise<void> {
    return this.memory.updateTransaction(txnId, fields)
  }

  addToPartCaches(partId: string, onHandDelta: number, reservedDelta: number): Promise<void> {
    return this.memory.addToPartCaches(partId, onHandDelta, reservedDelta)
  }

  setReservationStatus(reservationId: string, status: ReservationRow['status']): Promise<void> {
    return this.memory.setReservationStatus(reservationId, status)
  }

  insertTransaction(row: TransactionRow): Promise<void> {
    return this.memory.insertTransaction(row)
  }

  findAction(idempotencyKey: string): Promise<AgentAction | undefined> {
    return this.memory.findAction(idempotencyKey)
  }

  recordAction(action: AgentAction): Promise<void> {
    return this.memory.recordAction(action)
  }

  // ---- detection and units -----------------------------------------------------------------

  async detect(_rules?: readonly RuleName[]): Promise<Finding[]> {
    throw new Error('a sandbox answers detection only for the entities of a scope (detectInScope)')
  }

  /**
   * The rules over the scope's entities. The sandbox holds only what this finding's plan read, so
   * every rule runs over the whole of it (a handful of statements, not a few per row) and the
   * findings are kept for the scope's entities: its parts (whose whole ledgers are here), its
   * transactions, and every duplicate posting of a posted transaction's reference (all postings of
   * those references are copied in first). Parts that came only as a transaction's part have no
   * ledger here, and are never judged.
   */
  async detectInScope(entities: EntitySet): Promise<Finding[]> {
    await this.cover({ledgers: [...entities.partIds], transactions: [...entities.txnIds]})
    const posted = (await this.memory.readRows({transactions: [...entities.txnIds]})).transactions.filter(
      (row) => row.status === 'posted',
    )
    await this.cover({externalRefs: posted.map((row) => row.external_ref)})
    const references = new Set(posted.map((row) => `${row.source}\u0000${row.external_ref}`))
    return (await this.memory.detect()).filter((finding) => {
      if (RULE_INFO[finding.rule].entity === 'part') return entities.partIds.has(finding.entity)
      if (entities.txnIds.has(finding.entity)) return true
      return (
        finding.rule === 'duplicate_posting' &&
        references.has(`${String(finding.evidence.source)}\u0000${String(finding.evidence.external_ref)}`)
      )
    })
  }

  unitOfWork<T>(work: () => Promise<T>, commit: (result: T) => boolean): Promise<T> {
    return this.memory.unitOfWork(work, commit)
  }

  async assertWritable(): Promise<void> {}

  close(): void {
    this.memory.close()
  }
}
