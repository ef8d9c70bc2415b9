import type {Finding} from '../detect/finding.js'
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

/** Who is writing, so that every write is recorded under an idempotency key. */
export interface WriteContext {
  runId: string
  findingId: string
  idempotencyKey: string
}

/** What a write would do to stock, computed before it runs (for bounds and approval). */
export interface WriteImpact {
  partId: string | null
  onHandDelta: number
  reservedDelta: number
}

/** The entities a finding may touch; writes outside it are refused by the policy gate. */
export interface FindingScope {
  partIds: Set<string>
  txnIds: Set<string>
  reservationIds: Set<string>
  /** Parts a transaction in scope may be remapped to: only when the SKU resolves to exactly one part. */
  remapTargets: Map<string, string>
}

export interface TransactionQuery {
  partId?: string
  externalRef?: string
  status?: TransactionRecord['status']
  kind?: TransactionRecord['kind']
  limit?: number
}

/** Thrown by a tool for an expected failure: it becomes the observation, never a crash. */
export class ToolFailure extends Error {}

/**
 * One interface for every inventory: the embedded SQLite reference now, HTTP and Postgres later.
 * The agent, the engines and the evaluator only ever talk to this.
 */
export interface InventoryBackend {
  readonly location: string
  /** "Now" for time-based rules: a simulated inventory has a frozen clock, a real one the wall clock. */
  clock(): number

  getPart(partId: string): Promise<PartRecord>
  findPartsBySku(sku: string): Promise<ToolResult<'find_part_by_sku'>>
  listTransactions(query: TransactionQuery): Promise<ToolResult<'list_transactions'>>
  getTransaction(txnId: string): Promise<TransactionRecord>
  getLedgerBalance(partId: string): Promise<ToolResult<'get_ledger_balance'>>
  getIntegrationEvents(txnId: string): Promise<IntegrationEventRecord[]>
  listReservations(partId: string, status?: ReservationRecord['status']): Promise<ReservationRecord[]>

  /** Args have been validated against the tool's schema by the caller. */
  previewWrite(tool: WriteToolName, args: ToolArgs<WriteToolName>): Promise<WriteImpact>
  applyWrite(tool: WriteToolName, args: ToolArgs<WriteToolName>, context: WriteContext): Promise<WriteResult>

  /** Every rule over the whole inventory (or the named rules). */
  detect(rules?: readonly RuleName[]): Promise<Finding[]>
  /** Every rule, restricted to the entities of a scope: validation and re-checks. */
  detectInScope(scope: FindingScope): Promise<Finding[]>
  scopeOf(finding: Finding): Promise<FindingScope>

  /**
   * Runs work as one unit: everything it writes is committed together when `commit` returns
   * true, and rolled back otherwise or on error. Nothing is ever half-applied.
   */
  unitOfWork<T>(work: () => Promise<T>, commit: (result: T) => boolean): Promise<T>

  close(): void | Promise<void>
}
