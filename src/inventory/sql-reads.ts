import type {
  IntegrationEventRecord,
  PartRecord,
  ReservationRecord,
  ToolResult,
  TransactionRecord,
  WriteResult,
} from '../tools/tools.js'
import {canonicalJson} from '../util/canonical-json.js'
import {
  ToolFailure,
  type AgentAction,
  type PartRow,
  type ReservationRow,
  type RowSelection,
  type ScopeRows,
  type TransactionQuery,
  type TransactionRow,
} from './backend.js'
import {READ_QUERIES, transactionCountSql, transactionPageSql, type Dialect} from './read-queries.js'

/*
 * The reads of the SQL backends, written once over the query table of src/inventory/read-queries.ts
 * (docs/architecture.md, "Backends"). A backend says how it runs a statement in its dialect, how it
 * binds an id list, how it computes a ledger balance and whether readRows locks; the shaping of
 * the rows (JSON columns, missing entities) is here.
 */

/** The same normalization as NORMALIZED_SKU_SQL, for a SKU as received. */
export function normalizeSku(sku: string): string {
  return sku.toUpperCase().replace(/[-_ .]/g, '')
}

type ActionRow = {
  idempotency_key: string
  run_id: string
  finding_id: string
  tool: string
  args: unknown
  result: unknown
  at: number
}

/** A JSON object or array column: text on SQLite, already parsed by the PostgreSQL driver (json, jsonb). */
function jsonColumn<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T
}

function missing(entity: string, id: string): ToolFailure {
  return new ToolFailure(`${entity} "${id}" does not exist`)
}

export abstract class SqlReads {
  protected abstract readonly dialect: Dialect

  /** The rows of one statement in this backend's dialect. */
  protected abstract select<T>(sql: string, params: readonly unknown[]): Promise<T[]>
  /** The first row of one statement, if any. */
  protected abstract selectOne<T>(sql: string, params: readonly unknown[]): Promise<T | undefined>
  /** Runs one statement; how many rows it changed. */
  protected abstract execute(sql: string, params: readonly unknown[]): Promise<number>
  /** A list of ids as the one parameter that READ_QUERIES' id lists take. */
  protected abstract idList(ids: readonly string[]): unknown
  /** The sum of a part's posted stock deltas, as detection computes it. */
  protected abstract ledgerBalance(partId: string): Promise<number>

  /** A readRows statement as it is run (PostgreSQL locks the rows inside a unit of work). */
  protected lockedRead(sql: string): string {
    return sql
  }

  async getPart(partId: string): Promise<PartRecord> {
    const row = await this.selectOne<
      Omit<PartRecord, 'conversions' | 'aliases'> & {conversions: unknown; aliases: unknown}
    >(READ_QUERIES.part[this.dialect], [partId])
    if (!row) throw missing('part', partId)
    return {
      ...row,
      conversions: jsonColumn<PartRecord['conversions']>(row.conversions),
      aliases: jsonColumn<string[]>(row.aliases),
    }
  }

  async findPartsBySku(sku: string): Promise<ToolResult<'find_part_by_sku'>> {
    type Match = {id: string; sku: string}
    const matches: ToolResult<'find_part_by_sku'>['matches'] = []
    const exact = await this.selectOne<Match>(READ_QUERIES.partBySku[this.dialect], [sku])
    if (exact) matches.push({part_id: exact.id, sku: exact.sku, match: 'exact'})
    const alias = await this.selectOne<Match>(READ_QUERIES.partByAlias[this.dialect], [sku])
    if (alias) matches.push({part_id: alias.id, sku: alias.sku, match: 'alias'})
    const normalized = normalizeSku(sku)
    if (normalized.length > 0) {
      for (const row of await this.select<Match>(READ_QUERIES.partsByNormalizedSku[this.dialect], [normalized])) {
        if (!matches.some((match) => match.part_id === row.id))
          matches.push({part_id: row.id, sku: row.sku, match: 'normalized'})
      }
    }
    return {matches}
  }

  async listTransactions(query: TransactionQuery): Promise<ToolResult<'list_transactions'>> {
    if (query.partId === undefined && query.externalRef === undefined)
      throw new ToolFailure('give part_id or external_ref')
    const filters: Array<[string, string | undefined]> = [
      ['t.part_id', query.partId],
      ['t.external_ref', query.externalRef],
      ['t.status', query.status],
      ['t.kind', query.kind],
    ]
    const given = filters.filter((filter): filter is [string, string] => filter[1] !== undefined)
    const condition = given.map(([column]) => `${column} = ?`).join(' AND ')
    const params = given.map(([, value]) => value)
    const total = (await this.selectOne<{n: number}>(transactionCountSql(this.dialect, condition), params))!.n
    const transactions = await this.select<TransactionRecord>(transactionPageSql(this.dialect, condition), [
      ...params,
      query.limit ?? 20,
    ])
    return {transactions, total}
  }

  async getTransaction(txnId: string): Promise<TransactionRecord> {
    const row = await this.selectOne<TransactionRecord>(READ_QUERIES.transaction[this.dialect], [txnId])
    if (!row) throw missing('transaction', txnId)
    return row
  }

  async getLedgerBalance(partId: string): Promise<ToolResult<'get_ledger_balance'>> {
    const part = await this.getPart(partId)
    const stats = (await this.selectOne<{posted: number; unconvertible: number; largest: number}>(
      READ_QUERIES.ledgerStats[this.dialect],
      [partId],
    ))!
    const active = (await this.selectOne<{n: number}>(READ_QUERIES.activeReserved[this.dialect], [partId]))!.n
    return {
      part_id: partId,
      uom: part.uom,
      on_hand: part.on_hand,
      ledger_balance: await this.ledgerBalance(partId),
      posted_count: stats.posted,
      unconvertible_count: stats.unconvertible,
      largest_posting: stats.largest,
      reserved: part.reserved,
      active_reserved: active,
    }
  }

  async getIntegrationEvents(txnId: string): Promise<IntegrationEventRecord[]> {
    return this.select<IntegrationEventRecord>(READ_QUERIES.integrationEvents[this.dialect], [txnId])
  }

  async listReservations(partId: string, status?: ReservationRecord['status']): Promise<ReservationRecord[]> {
    return this.select<ReservationRecord>(READ_QUERIES.reservations[this.dialect], [partId, status ?? null])
  }

  async getReservation(reservationId: string): Promise<ReservationRow> {
    const row = await this.selectOne<ReservationRow>(READ_QUERIES.reservation[this.dialect], [reservationId])
    if (!row) throw missing('reservation', reservationId)
    return row
  }

  /**
   * One query per table and kind of selection, whatever its size: each id list travels as one
   * parameter, so a plan's scope costs a handful of statements instead of a few per row. Parts,
   * then transactions, then reservations: the order PostgreSQL locks them in.
   */
  async readRows(selection: RowSelection): Promise<ScopeRows> {
    const ledgers = selection.ledgers ?? []
    const txnIds = selection.transactions ?? []
    const refs = selection.externalRefs ?? []
    const partIds = [...new Set([...(selection.parts ?? []), ...ledgers])]
    const dialect = this.dialect
    let parts: PartRow[] = []
    let conversions: ScopeRows['uom_conversions'] = []
    let aliases: ScopeRows['sku_aliases'] = []
    if (partIds.length > 0) {
      const ids = [this.idList(partIds)]
      parts = await this.select<PartRow>(this.lockedRead(READ_QUERIES.partRows[dialect]), ids)
      conversions = await this.select(READ_QUERIES.conversionRows[dialect], ids)
      aliases = await this.select(READ_QUERIES.aliasRows[dialect], ids)
    }
    const transactions =
      ledgers.length + txnIds.length + refs.length === 0
        ? []
        : await this.select<TransactionRow>(this.lockedRead(READ_QUERIES.transactionRows[dialect]), [
            this.idList(ledgers),
            this.idList(txnIds),
            this.idList(refs),
          ])
    const reservations =
      ledgers.length === 0
        ? []
        : await this.select<ReservationRow>(this.lockedRead(READ_QUERIES.reservationRows[dialect]), [
            this.idList(ledgers),
          ])
    return {parts, uom_conversions: conversions, sku_aliases: aliases, transactions, reservations}
  }

  async findAction(idempotencyKey: string): Promise<AgentAction | undefined> {
    const row = await this.selectOne<ActionRow>(READ_QUERIES.action[this.dialect], [idempotencyKey])
    if (!row) return undefined
    return {
      idempotencyKey: row.idempotency_key,
      runId: row.run_id,
      findingId: row.finding_id,
      tool: row.tool,
      // SQLite keeps the canonical text; jsonb keeps the value: canonical JSON again.
      args: typeof row.args === 'string' ? row.args : canonicalJson(row.args),
      result: jsonColumn<WriteResult>(row.result),
      at: row.at,
    }
  }

  async recordAction(action: AgentAction): Promise<void> {
    await this.execute(READ_QUERIES.recordAction[this.dialect], [
      action.idempotencyKey,
      action.runId,
      action.findingId,
      action.tool,
      action.args,
      JSON.stringify(action.result),
      action.at,
    ])
  }
}
