import {z} from 'zod'

import {detectAll, detectForEntities} from '../../detect/sqlite-detector.js'
import type {Finding} from '../../detect/finding.js'
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
import {
  type FindingScope,
  type InventoryBackend,
  type TransactionQuery,
  type WriteContext,
  type WriteImpact,
} from '../backend.js'
import {SqliteInventory} from '../sqlite-backend.js'
import {API_PREFIX, InfoResponse, queryFromReadArgs, toolPath} from './contract.js'
import {PartiallyAppliedError, sendWrite, sendWritesInOrder, type PlannedWrite} from './apply-writes.js'
import {InventoryHttpClient, type HttpClientOptions} from './http-client.js'
import {InventoryMirror, type SyncStats} from './mirror.js'

/*
 * An inventory behind the REST contract (schemas/openapi.json).
 *
 * - Detection mirrors the bulk reads into a local SQLite file (InventoryMirror) and runs the same
 *   SQL rules there; the mirror is brought up to date (incrementally) before every detection.
 * - Troubleshooting reads go live, to the inventory itself.
 * - A unit of work cannot be a transaction on a remote system. It runs against a sandbox instead:
 *   the freshly synced mirror inside a SQLite transaction that is always rolled back. Its writes
 *   are recorded; once a unit has written, its reads come from the sandbox, so they reflect those
 *   writes. When the unit is to be committed, the recorded writes are sent live, in order, each
 *   under its idempotency key; then the mirror is synced and the unit's last validation is checked
 *   again on the live data. Nothing can be rolled back there: when a write fails midway, the error
 *   (PartiallyAppliedError) says exactly which writes were applied, which one failed and whether
 *   it may have been applied, and which were never sent.
 */

export interface HttpInventoryOptions extends HttpClientOptions {
  /** The local SQLite mirror used for detection (created when missing). */
  mirrorPath: string
  /** Rows per bulk-read page (default 5,000). */
  pageRows?: number
}

export {PartiallyAppliedError, type AppliedWrite, type PlannedWrite} from './apply-writes.js'

interface Unit {
  writes: PlannedWrite[]
  context?: WriteContext
  lastCheck?: {scope: FindingScope; findings: Finding[]}
}

const describeFinding = (finding: Finding) =>
  `${finding.rule} on ${finding.entity} (${JSON.stringify(finding.evidence)})`
const findingIds = (findings: readonly Finding[]) => new Set(findings.map((finding) => finding.id))

export class HttpInventory implements InventoryBackend {
  readonly location: string
  readonly client: InventoryHttpClient
  readonly mirror: InventoryMirror
  private info: InfoResponse
  private sandbox: SqliteInventory | undefined
  private unit: Unit | undefined
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
    if (this.unit) throw new Error('the mirror cannot be synced inside a unit of work')
    const stats = await this.mirror.sync(this.client, {beforeReset: () => this.closeSandbox()})
    this.info = stats.info
    this.lastSync = stats
    return stats
  }

  private closeSandbox(): void {
    this.sandbox?.close()
    this.sandbox = undefined
  }

  /** The mirror as a SQLite inventory: detection, scopes, previews and the unit's sandbox. */
  private local(): SqliteInventory {
    this.sandbox ??= SqliteInventory.open(this.mirror.path)
    return this.sandbox
  }

  /** Inside a unit that has written, reads must see those writes: they come from the sandbox. */
  private get readsFromSandbox(): boolean {
    return this.unit !== undefined && this.unit.writes.length > 0
  }

  private async ensureMirror(): Promise<SqliteInventory> {
    if (!this.unit) await this.sync()
    return this.local()
  }

  private async readTool<T>(name: string, args: Record<string, unknown>, schema: z.ZodType<T>): Promise<T> {
    return this.client.get(`${toolPath(name)}${queryFromReadArgs(args)}`, schema)
  }

  // ---- reads: live, or from the sandbox once the unit has written -------------------------

  async getPart(partId: string): Promise<PartRecord> {
    if (this.readsFromSandbox) return this.local().getPart(partId)
    return this.readTool('get_part', {part_id: partId}, getPart.result)
  }

  async findPartsBySku(sku: string): Promise<ToolResult<'find_part_by_sku'>> {
    if (this.readsFromSandbox) return this.local().findPartsBySku(sku)
    return this.readTool('find_part_by_sku', {sku}, findPartBySku.result)
  }

  async listTransactions(query: TransactionQuery): Promise<ToolResult<'list_transactions'>> {
    if (this.readsFromSandbox) return this.local().listTransactions(query)
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
    if (this.readsFromSandbox) return this.local().getTransaction(txnId)
    return this.readTool('get_transaction', {txn_id: txnId}, getTransaction.result)
  }

  async getLedgerBalance(partId: string): Promise<ToolResult<'get_ledger_balance'>> {
    if (this.readsFromSandbox) return this.local().getLedgerBalance(partId)
    return this.readTool('get_ledger_balance', {part_id: partId}, getLedgerBalance.result)
  }

  /** Events are not mirrored (no rule needs them, and no write changes them): always live. */
  async getIntegrationEvents(txnId: string): Promise<IntegrationEventRecord[]> {
    return (await this.readTool('get_integration_events', {txn_id: txnId}, getIntegrationEvents.result)).events
  }

  async listReservations(partId: string, status?: ReservationRecord['status']): Promise<ReservationRecord[]> {
    if (this.readsFromSandbox) return this.local().listReservations(partId, status)
    return (await this.readTool('list_reservations', {part_id: partId, status}, listReservations.result)).reservations
  }

  // ---- writes ------------------------------------------------------------------------------

  async previewWrite(tool: WriteToolName, args: ToolArgs<WriteToolName>): Promise<WriteImpact> {
    return (await this.ensureMirror()).previewWrite(tool, args)
  }

  /** In a unit: applied to the sandbox and recorded, sent live on commit. Outside one: sent live now. */
  async applyWrite(tool: WriteToolName, args: ToolArgs<WriteToolName>, context: WriteContext): Promise<WriteResult> {
    if (!this.unit)
      return this.sendWrite(
        {tool, args: args as Record<string, unknown>, idempotencyKey: context.idempotencyKey},
        context,
      )
    const result = await this.local().applyWrite(tool, args, context)
    this.unit.writes.push({tool, args: args as Record<string, unknown>, idempotencyKey: context.idempotencyKey})
    this.unit.context = context
    return result
  }

  private async sendWrite(
    write: PlannedWrite,
    context: Pick<WriteContext, 'runId' | 'findingId'>,
  ): Promise<WriteResult> {
    return sendWrite(this.client, write, context)
  }

  // ---- detection and scope -----------------------------------------------------------------

  async detect(rules?: readonly RuleName[]): Promise<Finding[]> {
    const local = await this.ensureMirror()
    return detectAll(local.db, this.clock(), rules)
  }

  async detectInScope(scope: FindingScope): Promise<Finding[]> {
    const local = await this.ensureMirror()
    const findings = detectForEntities(local.db, this.clock(), scope.partIds, scope.txnIds)
    if (this.unit) this.unit.lastCheck = {scope, findings}
    return findings
  }

  async scopeOf(finding: Finding): Promise<FindingScope> {
    return (await this.ensureMirror()).scopeOf(finding)
  }

  // ---- units of work -----------------------------------------------------------------------

  async unitOfWork<T>(work: () => Promise<T>, commit: (result: T) => boolean): Promise<T> {
    if (this.unit) throw new Error('units of work do not nest')
    await this.sync()
    const unit: Unit = {writes: []}
    let keep = false
    let result: T
    this.unit = unit
    try {
      result = await this.local().unitOfWork(work, (value) => {
        keep = commit(value)
        return false
      })
    } finally {
      this.unit = undefined
    }
    if (keep && unit.writes.length > 0) await this.applyLive(unit, unit.context!)
    return result
  }

  /** Sends a unit's writes in order, then checks on live data what the sandbox validated. */
  private async applyLive(unit: Unit, context: WriteContext): Promise<void> {
    const applied = await sendWritesInOrder(this.client, unit.writes, context)
    if (!unit.lastCheck) return
    await this.sync()
    const live = detectForEntities(
      this.local().db,
      this.clock(),
      unit.lastCheck.scope.partIds,
      unit.lastCheck.scope.txnIds,
    )
    const expected = findingIds(unit.lastCheck.findings)
    const unexpected = live.filter((finding) => !expected.has(finding.id))
    if (unexpected.length > 0) {
      throw new PartiallyAppliedError(this.location, {
        applied,
        notSent: [],
        problem: `the live data does not validate: ${unexpected.map(describeFinding).join('; ')}`,
      })
    }
  }

  close(): void {
    this.closeSandbox()
    this.mirror.close()
  }
}
