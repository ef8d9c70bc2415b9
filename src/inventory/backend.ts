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
import {ConfigError} from '../errors.js'
import {columnNames} from './schema-columns.js'

/*
 * The data-access contract every inventory implements (docs/architecture.md, "Layers"). A backend
 * offers reads, primitive writes, detection, row snapshots and a short write unit; it knows
 * nothing about what a write tool means. The meaning of each tool (its preview, its effect, its
 * idempotency) is written once in src/tools/write-tools.ts over these primitives, the finding's
 * scope is computed in src/agent/scope.ts, and plan/apply lives in src/agent/.
 */

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

/** Entities that scoped detection answers for: parts (with their ledgers) and transactions. */
export interface EntitySet {
  partIds: ReadonlySet<string>
  txnIds: ReadonlySet<string>
}

export interface TransactionQuery {
  partId?: string
  externalRef?: string
  status?: TransactionRecord['status']
  kind?: TransactionRecord['kind']
  limit?: number
}

/** The stored row of a transaction (no computed columns). */
export interface TransactionRow {
  id: string
  part_id: string | null
  sku: string
  kind: TransactionRecord['kind']
  qty: number
  uom: string
  status: TransactionRecord['status']
  source: string
  external_ref: string
  created_at: number
  posted_at: number | null
}

/** The columns of a transaction row, in the order `transactionRowValues` gives their values. */
export const TRANSACTION_ROW_COLUMNS = columnNames('transactions') satisfies ReadonlyArray<keyof TransactionRow>

/** A transaction row's values in the order of TRANSACTION_ROW_COLUMNS, for an INSERT in any dialect. */
export function transactionRowValues(row: TransactionRow): Array<string | number | null> {
  return TRANSACTION_ROW_COLUMNS.map((column) => row[column])
}

export interface PartRow {
  id: string
  sku: string
  name: string
  uom: string
  on_hand: number
  reserved: number
  location: string
  updated_at: number
}

export type ReservationRow = Omit<ReservationRecord, 'shipped_qty'>

/**
 * Which rows to read, by what they belong to. A part selection reads the part row with its unit
 * conversions and aliases; a ledger selection reads the same and every transaction and reservation
 * of the part; a transaction selection reads that row; an external-ref selection reads every
 * transaction carrying that reference. The same selection always names the same rows, so reading
 * it twice and comparing tells whether anything in it changed (a plan's fingerprint).
 */
export interface RowSelection {
  parts?: readonly string[]
  ledgers?: readonly string[]
  transactions?: readonly string[]
  externalRefs?: readonly string[]
}

/** The rows of a selection, sorted by primary key within each table. */
export interface ScopeRows {
  parts: PartRow[]
  uom_conversions: Array<{part_id: string; uom: string; factor: number}>
  sku_aliases: Array<{alias: string; part_id: string}>
  transactions: TransactionRow[]
  reservations: ReservationRow[]
}

/** One recorded agent write: what `agent_actions` holds under an idempotency key. */
export interface AgentAction {
  idempotencyKey: string
  runId: string
  findingId: string
  tool: string
  /** Canonical JSON of the arguments. */
  args: string
  result: WriteResult
  at: number
}

/** The fields of a transaction a write may change. */
export type TransactionUpdate = Partial<Pick<TransactionRow, 'status' | 'posted_at' | 'uom' | 'part_id'>>

/** Thrown by a tool for an expected failure: it becomes the observation, never a crash. */
export class ToolFailure extends Error {}

/** Reads: what the read tools and the write tools' previews see. */
export interface InventoryReads {
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
  /** One reservation row; a ToolFailure when it does not exist. */
  getReservation(reservationId: string): Promise<ReservationRow>
  /** The rows of a selection, for fingerprints, scope computation and seeding a sandbox. */
  readRows(selection: RowSelection): Promise<ScopeRows>
}

/**
 * Primitive writes. Each changes exactly the named fields of one row, or inserts one row; none
 * checks meaning (that is the tool's job). Part cache deltas also stamp `updated_at` with clock().
 */
export interface InventoryWrites {
  updateTransaction(txnId: string, fields: TransactionUpdate): Promise<void>
  addToPartCaches(partId: string, onHandDelta: number, reservedDelta: number): Promise<void>
  setReservationStatus(reservationId: string, status: ReservationRow['status']): Promise<void>
  insertTransaction(row: TransactionRow): Promise<void>
  /** The action recorded under a key, if any: what makes a write idempotent. */
  findAction(idempotencyKey: string): Promise<AgentAction | undefined>
  recordAction(action: AgentAction): Promise<void>
}

/**
 * One interface for every inventory: the embedded SQLite reference now, PostgreSQL and HTTP next.
 * The agent, the engines and the evaluator only ever talk to this.
 */
export interface InventoryBackend extends InventoryReads, InventoryWrites {
  /** Every rule over the whole inventory (or the named rules). */
  detect(rules?: readonly RuleName[]): Promise<Finding[]>
  /** Every rule, restricted to these parts and transactions: validation and re-checks. */
  detectInScope(entities: EntitySet): Promise<Finding[]>

  /**
   * Runs work as one short unit: everything it writes is committed together when `commit`
   * returns true, and rolled back otherwise or on error. Nothing is ever half-applied. Units nest
   * (an inner unit is a savepoint). Hold it for milliseconds: other writers wait while it runs.
   */
  unitOfWork<T>(work: () => Promise<T>, commit: (result: T) => boolean): Promise<T>

  /**
   * False for an inventory that cannot roll back (one behind an HTTP API): its unitOfWork cannot
   * undo anything, its primitive writes are not offered, and a plan's writes go whole through
   * sendWrite, in order, so that apply can say exactly which writes landed when one fails
   * (docs/architecture.md, "Backends without rollback"). Absent means true.
   */
  readonly canRollBack?: boolean

  /**
   * Only where canRollBack is false: one write tool call sent to the inventory, which applies its
   * meaning itself, at most once per idempotency key (a repeat answers the recorded result).
   */
  sendWrite?(tool: WriteToolName, args: ToolArgs<WriteToolName>, context: WriteContext): Promise<WriteResult>

  /** Throws a ConfigError saying why when this inventory cannot be written (checked before apply). */
  assertWritable(): Promise<void>

  close(): void | Promise<void>
}

/**
 * The check behind `assertWritable` for a backend with units of work: one write, rolled back at once,
 * fails exactly where a fix would (file mode, folder, locks, a read-only role or server). `advice`
 * says what to change.
 */
export async function probeWritable(
  backend: Pick<InventoryBackend, 'location' | 'unitOfWork'>,
  write: () => Promise<unknown>,
  advice: string,
): Promise<void> {
  try {
    await backend.unitOfWork(write, () => false)
  } catch (error) {
    throw new ConfigError(`cannot write the inventory ${backend.location}: ${(error as Error).message}`, {
      code: 'DB_NOT_WRITABLE',
      cause: error,
      suggestions: [`${advice}, or run with --dry-run to plan without writing.`],
    })
  }
}
