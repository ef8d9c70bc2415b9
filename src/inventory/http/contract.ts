import {z} from 'zod'

import {TOOLS, type AnyTool} from '../../tools/tools.js'
import {RESERVATION_STATUSES, TRANSACTION_KINDS, TRANSACTION_STATUSES} from '../schema-columns.js'
import type {SyncTableName} from './change-tracking.js'

/*
 * The REST contract, as zod schemas: the reference server validates every request and the HTTP
 * backend every response against these, and schemas/openapi.json is generated from them and from
 * the tool schema (src/tools/tools.ts). An endpoint per read tool (GET, arguments in the query),
 * a POST per write tool (arguments as the JSON body, an Idempotency-Key header), paged bulk reads
 * for detection, one error shape, bearer-token auth, and GET /health.
 */

export const CONTRACT_VERSION = '1'
export const API_PREFIX = '/v1'

export const ERROR_CODES = [
  'unauthorized',
  'not_found',
  'invalid_request',
  'tool_failed',
  'idempotency_key_reused',
  'rate_limited',
  'unavailable',
  'internal',
] as const
export type ErrorCode = (typeof ERROR_CODES)[number]

/** The one error shape every non-2xx answer has. */
export const ErrorBody = z.object({
  error: z.object({
    code: z
      .enum(ERROR_CODES)
      .describe('tool_failed: an expected failure of a tool, to be shown to the engine as an observation'),
    message: z.string().describe('what was expected, what was found, and what to do next'),
  }),
})
export type ErrorBody = z.infer<typeof ErrorBody>

export const HealthResponse = z.object({status: z.literal('ok'), contract: z.string()})

export const InfoResponse = z.object({
  inventory_id: z.string().describe('changes when the inventory is replaced: a client mirror then starts over'),
  clock: z.number().int().describe('the inventory\'s "now" in epoch milliseconds, for time-based rules'),
  clock_frozen: z.boolean().describe('true for a simulated inventory whose clock does not move'),
  watermark: z.number().int().describe('the change stamp of the latest change'),
  contract: z.string(),
})
export type InfoResponse = z.infer<typeof InfoResponse>

const int = z.number().int()

/** Rows of the bulk reads: the reference schema's columns (docs/architecture.md §3). */
export const SYNC_ROW_SCHEMAS = {
  parts: z.object({
    id: z.string(),
    sku: z.string(),
    name: z.string(),
    uom: z.string(),
    on_hand: int,
    reserved: int,
    location: z.string(),
    updated_at: int,
  }),
  transactions: z.object({
    id: z.string(),
    part_id: z.string().nullable(),
    sku: z.string(),
    kind: z.enum(TRANSACTION_KINDS),
    qty: int,
    uom: z.string(),
    status: z.enum(TRANSACTION_STATUSES),
    source: z.string(),
    external_ref: z.string(),
    created_at: int,
    posted_at: int.nullable(),
  }),
  reservations: z.object({
    id: z.string(),
    part_id: z.string(),
    qty: int,
    order_ref: z.string(),
    status: z.enum(RESERVATION_STATUSES),
    created_at: int,
  }),
  sku_aliases: z.object({alias: z.string(), part_id: z.string()}),
  uom_conversions: z.object({part_id: z.string(), uom: z.string(), factor: int}),
  agent_actions: z.object({
    idempotency_key: z.string(),
    run_id: z.string(),
    finding_id: z.string(),
    tool: z.string(),
    args: z.string().describe("the write's arguments, as JSON text"),
    result: z.string().describe('its result, as JSON text'),
    at: int,
  }),
} satisfies Record<SyncTableName, z.ZodObject>

/**
 * The rows of a selection (GET /v1/rows): what a plan reads whole and fingerprints, and what the
 * sandbox is seeded from (docs/architecture.md, "The backend contract", readRows). Each
 * parameter repeats: `?part=P-1&ledger=P-1&transaction=T-9&external_ref=PO-3`.
 */
export const RowsQuery = z.strictObject({
  part: z.array(z.string()).optional().describe('part rows with their unit conversions and aliases'),
  ledger: z.array(z.string()).optional().describe('the same, with every transaction and reservation of the part'),
  transaction: z.array(z.string()).optional().describe('single transactions by id'),
  external_ref: z.array(z.string()).optional().describe('every transaction carrying this external reference'),
})

export const RowsResponse = z.object({
  parts: z.array(SYNC_ROW_SCHEMAS.parts),
  uom_conversions: z.array(SYNC_ROW_SCHEMAS.uom_conversions),
  sku_aliases: z.array(SYNC_ROW_SCHEMAS.sku_aliases),
  transactions: z.array(SYNC_ROW_SCHEMAS.transactions),
  reservations: z.array(SYNC_ROW_SCHEMAS.reservations),
})

/** GET /v1/reservation?reservation_id=…: one reservation row (a write tool's preview reads it). */
export const ReservationQuery = z.strictObject({reservation_id: z.string()})
export const ReservationResponse = SYNC_ROW_SCHEMAS.reservations

export const ROWS_PATH = `${API_PREFIX}/rows`
export const RESERVATION_PATH = `${API_PREFIX}/reservation`

/** The query string of a row selection (GET /v1/rows). */
export function queryFromSelection(selection: {
  parts?: readonly string[]
  ledgers?: readonly string[]
  transactions?: readonly string[]
  externalRefs?: readonly string[]
}): string {
  const query = new URLSearchParams()
  for (const id of selection.parts ?? []) query.append('part', id)
  for (const id of selection.ledgers ?? []) query.append('ledger', id)
  for (const id of selection.transactions ?? []) query.append('transaction', id)
  for (const ref of selection.externalRefs ?? []) query.append('external_ref', ref)
  const text = query.toString()
  return text === '' ? '' : `?${text}`
}

/** A page of a bulk read. */
export function syncPageSchema<T extends z.ZodType>(row: T) {
  return z.object({
    rows: z.array(row),
    next_cursor: z.string().nullable().describe('pass as `cursor` for the next page; null on the last page'),
    watermark: int.describe(
      'the change stamp this read has seen everything up to: store it, and pass it as `updated_since` next time',
    ),
    inventory_id: z.string(),
  })
}

export const DeletionsPage = z.object({
  rows: z.array(
    z.object({
      table: z.enum(Object.keys(SYNC_ROW_SCHEMAS) as [SyncTableName, ...SyncTableName[]]),
      key: z.array(z.string()),
      version: int,
    }),
  ),
  next_cursor: z.string().nullable(),
  watermark: int,
  inventory_id: z.string(),
})

export const SyncQuery = z.strictObject({
  cursor: z.string().optional(),
  updated_since: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe('only rows changed after this change stamp (a watermark the server returned); 0 or absent: all rows'),
  limit: z.coerce.number().int().min(1).max(10_000).optional().describe('rows per page (default 1,000)'),
})
export const DEFAULT_PAGE_ROWS = 1000

/** An Idempotency-Key: 8 to 200 visible ASCII characters. */
export const IdempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{8,200}$/, 'an Idempotency-Key is 8 to 200 visible ASCII characters')

export type ReadTool = Extract<AnyTool, {effect: 'read'}>
export type WriteTool = Extract<AnyTool, {effect: 'write'}>

export const READ_TOOLS = TOOLS.filter((tool): tool is ReadTool => tool.effect === 'read')
export const WRITE_TOOLS = TOOLS.filter((tool): tool is WriteTool => tool.effect === 'write')

export const toolPath = (name: string): string => `${API_PREFIX}/tools/${name}`
export const syncPath = (table: string): string => `${API_PREFIX}/sync/${table}`

/**
 * Query parameters are strings; a read tool's arguments are typed. Integer and number arguments
 * are converted (a value that is not a number stays a string, so that the tool's own schema
 * rejects it with its own message); everything else is passed as received.
 */
export function readArgsFromQuery(tool: ReadTool, query: URLSearchParams): Record<string, unknown> {
  const numeric = numericArguments(tool)
  const args: Record<string, unknown> = {}
  for (const [name, value] of query) {
    args[name] = numeric.has(name) && value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : value
  }
  return args
}

const numericByTool = new Map<string, Set<string>>()

function numericArguments(tool: ReadTool): Set<string> {
  let numeric = numericByTool.get(tool.name)
  if (!numeric) {
    const json = z.toJSONSchema(tool.args, {io: 'input'}) as {properties?: Record<string, {type?: string}>}
    numeric = new Set(
      Object.entries(json.properties ?? {})
        .filter(([, property]) => property.type === 'integer' || property.type === 'number')
        .map(([name]) => name),
    )
    numericByTool.set(tool.name, numeric)
  }
  return numeric
}

/** The query string of a read tool call (the HTTP backend's side of readArgsFromQuery). */
export function queryFromReadArgs(args: Record<string, unknown>): string {
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(args)) if (value !== undefined) query.set(name, String(value))
  const text = query.toString()
  return text === '' ? '' : `?${text}`
}
