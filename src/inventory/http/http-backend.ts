import {z} from 'zod'

import {detectAll, detectForEntities} from '../../detect/sqlite-detector.js'
import type {Finding} from '../../detect/finding.js'
import {ConfigError} from '../../errors.js'
import type {RuleName} from '../../tools/catalogue.js'
import {
  findPartBySku,
  getIntegrationEvents,
  getLedgerBalance,
  getPart,
  getTransaction,
  listReservations,
  listTransactions,
  type IntegrationEventRecord,
  type PartRecord,
  type ReservationRecord,
  type ToolArgs,
  type ToolResult,
  type TransactionRecord,
  type WriteResult,
  type WriteToolName,
} from '../../tools/tools.js'
import type {
  AgentAction,
  EntitySet,
  InventoryBackend,
  ReservationRow,
  RowSelection,
  ScopeRows,
  TransactionQuery,
  TransactionUpdate,
  WriteContext,
} from '../backend.js'
import {SqliteInventory} from '../sqlite-backend.js'
import {
  API_PREFIX,
  InfoResponse,
  queryFromReadArgs,
  queryFromSelection,
  RESERVATION_PATH,
  ReservationResponse,
  ROWS_PATH,
  RowsResponse,
  toolPath,
} from './contract.js'
import {sendWrite} from './apply-writes.js'
import {InventoryHttpClient, type HttpClientOptions} from './http-client.js'
import {InventoryMirror, type SyncStats} from './mirror.js'

/*
 * An inventory behind the REST contract (schemas/openapi.json; docs/architecture.md, "Backends").
 *
 * - Reads go live: the read tools, a row selection (GET /v1/rows) and single reservations.
 * - Detection mirrors the bulk reads into a local SQLite file (InventoryMirror), incrementally by
 *   cursor, and runs the same SQL rules there; so does scoped detection (validation).
 * - It cannot roll back (canRollBack: false): a plan's writes are sent whole, in order, each as a
 *   POST under its idempotency key (sendWrite); the server applies the tool's meaning over its own
 *   backend in its own unit. src/agent/apply.ts then validates by reading back and, when a write
 *   fails midway, escalates with exactly which writes were applied. The primitive writes of the
 *   contract are not offered: they would let half a tool land.
 */

export interface HttpInventoryOptions extends HttpClientOptions {
  /** The local SQLite mirror used for detection (created when missing). */
  mirrorPath: string
  /** Rows per bulk-read page (default 5,000). */
  pageRows?: number
}

export {PartiallyAppliedError, type AppliedWrite, type PlannedWrite} from './apply-writes.js'

export class HttpInventory implements InventoryBackend {
  readonly location: string
  readonly client: InventoryHttpClient
  readonly mirror: InventoryMirror
  readonly canRollBack = false
  private info: InfoResponse
  private local: SqliteInventory | undefined
  /** The last sync's figures (tests and the benchmark). */
  lastSync: SyncStats | undefined

  private constructor(client: InventoryHttpClient, mirror: InventoryMirror, info: InfoResponse) {
    this.client = client
    this.location = client.baseUrl
    this.mirror = mirror
    this.info = info
  }

  /** Connects (one request, which also checks the token) and opens the mirror; syncs nothing yet. */
  static async open(options: HttpInventoryOptions): Promise<HttpInventory> {
    const client = new InventoryHttpClient(options)
    const info = await client.get(`${API_PREFIX}/info`, InfoResponse)
    return new HttpInventory(client, InventoryMirror.open(options.mirrorPath, {pageRows: options.pageRows}), info)
  }

  clock(): number {
    return this.info.clock_frozen ? this.info.clock : Date.now()
  }

  /** Brings the mirror up to date; the mirror's own SQLite backend is reopened after a full sync. */
  async sync(): Promise<SyncStats> {
    const stats = await this.mirror.sync(this.client, {beforeReset: () => this.closeLocal()})
    this.info = stats.info
    this.lastSync = stats
    return stats
  }

  private closeLocal(): void {
    this.local?.close()
    this.local = undefined
  }

  /** The mirror, synced first, as a SQLite inventory: detection and the idempotency record. */
  private async mirrored(): Promise<SqliteInventory> {
    await this.sync()
    this.local ??= SqliteInventory.open(this.mirror.path)
    return this.local
  }

  private async readTool<T>(name: string, args: Record<string, unknown>, schema: z.ZodType<T>): Promise<T> {
    return this.client.get(`${toolPath(name)}${queryFromReadArgs(args)}`, schema)
  }

  // ---- reads: live ---------------------------------------------------------------------------

  async getPart(partId: string): Promise<PartRecord> {
    return this.readTool('get_part', {part_id: partId}, getPart.result)
  }

  async findPartsBySku(sku: string): Promise<ToolResult<'find_part_by_sku'>> {
    return this.readTool('find_part_by_sku', {sku}, findPartBySku.result)
  }

  async listTransactions(query: TransactionQuery): Promise<ToolResult<'list_transactions'>> {
    const args = {
      part_id: query.partId,
      external_ref: query.externalRef,
      status: query.status,
      kind: query.kind,
      limit: query.limit,
    }
    return this.readTool('list_transactions', args, listTransactions.result)
  }

  async getTransaction(txnId: string): Promise<TransactionRecord> {
    return this.readTool('get_transaction', {txn_id: txnId}, getTransaction.result)
  }

  async getLedgerBalance(partId: string): Promise<ToolResult<'get_ledger_balance'>> {
    return this.readTool('get_ledger_balance', {part_id: partId}, getLedgerBalance.result)
  }

  async getIntegrationEvents(txnId: string): Promise<IntegrationEventRecord[]> {
    return (await this.readTool('get_integration_events', {txn_id: txnId}, getIntegrationEvents.result)).events
  }

  async listReservations(partId: string, status?: ReservationRecord['status']): Promise<ReservationRecord[]> {
    return (await this.readTool('list_reservations', {part_id: partId, status}, listReservations.result)).reservations
  }

  async getReservation(reservationId: string): Promise<ReservationRow> {
    const query = new URLSearchParams({reservation_id: reservationId})
    return this.client.get(`${RESERVATION_PATH}?${query}`, ReservationResponse)
  }

  async readRows(selection: RowSelection): Promise<ScopeRows> {
    return this.client.get(`${ROWS_PATH}${queryFromSelection(selection)}`, RowsResponse)
  }

  // ---- writes: whole tools, sent under their keys --------------------------------------------

  async sendWrite(tool: WriteToolName, args: ToolArgs<WriteToolName>, context: WriteContext): Promise<WriteResult> {
    return sendWrite(
      this.client,
      {tool, args: args as Record<string, unknown>, idempotencyKey: context.idempotencyKey},
      context,
    )
  }

  /** What the inventory recorded under a key: its agent_actions, as mirrored (synced first). */
  async findAction(idempotencyKey: string): Promise<AgentAction | undefined> {
    return (await this.mirrored()).findAction(idempotencyKey)
  }

  private noPrimitives(what: string): never {
    throw new Error(
      `${this.location} takes whole writes (sendWrite), not the primitive ${what}: ` +
        'it cannot roll back a half-applied tool',
    )
  }

  async updateTransaction(_txnId: string, _fields: TransactionUpdate): Promise<void> {
    this.noPrimitives('updateTransaction')
  }

  async addToPartCaches(_partId: string, _onHandDelta: number, _reservedDelta: number): Promise<void> {
    this.noPrimitives('addToPartCaches')
  }

  async setReservationStatus(_reservationId: string, _status: ReservationRow['status']): Promise<void> {
    this.noPrimitives('setReservationStatus')
  }

  async insertTransaction(): Promise<void> {
    this.noPrimitives('insertTransaction')
  }

  async recordAction(_action: AgentAction): Promise<void> {
    this.noPrimitives('recordAction')
  }

  /** Nothing here can be rolled back: the work runs, and `commit` decides nothing. */
  async unitOfWork<T>(work: () => Promise<T>, commit: (result: T) => boolean): Promise<T> {
    const result = await work()
    commit(result)
    return result
  }

  /** Reachable with this token (checked when opened and again here); the server refuses writes per write. */
  async assertWritable(): Promise<void> {
    try {
      this.info = await this.client.get(`${API_PREFIX}/info`, InfoResponse)
    } catch (error) {
      throw new ConfigError(`cannot reach the inventory ${this.location}: ${(error as Error).message}`, {
        code: 'INVENTORY_UNREACHABLE',
        cause: error,
      })
    }
  }

  // ---- detection: on the mirror ------------------------------------------------------------

  async detect(rules?: readonly RuleName[]): Promise<Finding[]> {
    const local = await this.mirrored()
    return detectAll(local.db, this.clock(), rules)
  }

  async detectInScope(entities: EntitySet): Promise<Finding[]> {
    const local = await this.mirrored()
    return detectForEntities(local.db, this.clock(), entities.partIds, entities.txnIds)
  }

  close(): void {
    this.closeLocal()
    this.mirror.close()
  }
}
