import {createHash, timingSafeEqual} from 'node:crypto'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {Server as HttpsServer} from 'node:https'
import type {AddressInfo} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

import {z} from 'zod'

import {ToolFailure} from '../backend.js'
import type {ReadToolName, ToolArgs, WriteToolName} from '../../tools/tools.js'
import {SYNC_TABLE_NAMES, type SyncTableName} from './change-tracking.js'
import {
  API_PREFIX,
  CONTRACT_VERSION,
  DEFAULT_PAGE_ROWS,
  IdempotencyKey,
  READ_TOOLS,
  RESERVATION_PATH,
  ReservationQuery,
  ROWS_PATH,
  RowsQuery,
  SyncQuery,
  WRITE_TOOLS,
  readArgsFromQuery,
  type ErrorBody,
  type ErrorCode,
} from './contract.js'
import {callReadTool} from '../../tools/read-tools.js'
import type {ServedInventory} from './served-inventory.js'

/*
 * The reference server of the REST contract (schemas/openapi.json), on node:http. It is the
 * example an integrator adapts to their ERP, so it is one plain request handler: authenticate,
 * route, validate with the contract's zod schemas, call the inventory, answer JSON or the one
 * error shape. Writes are serialized, applied once per Idempotency-Key, and each is logged.
 */

/** One line of the write log: every write request, whatever came of it. Free text (reasons) is left out. */
export interface WriteLogEntry {
  at: string
  tool: string
  idempotency_key: string
  run_id: string
  finding_id: string
  target: Record<string, unknown>
  outcome: 'applied' | 'unchanged' | 'replayed' | 'tool_failed' | 'conflict' | 'error'
  message: string
}

/**
 * Test-only fault injection: asked before a request is handled, and for a write again before and
 * after it is applied. It lets tests make the server fail the ways real ones do.
 */
export type FaultHook = (request: {method: string; path: string; phase: FaultPhase}) => FaultAction | undefined
/** before: nothing read yet; before-apply: a write's body was read and checked; after-apply: it was applied. */
export type FaultPhase = 'before' | 'before-apply' | 'after-apply'
export type FaultAction =
  | {kind: 'respond'; status: number; retryAfter?: string; body?: string}
  | {kind: 'stall'; ms: number}
  | {kind: 'malformed'}
  | {kind: 'crash'}

export interface InventoryServerOptions {
  inventory: ServedInventory
  /** When set, every request but GET /health must carry `Authorization: Bearer <token>`. */
  token?: string
  logWrite?: (entry: WriteLogEntry) => void
  faults?: FaultHook
  maxBodyBytes?: number
}

class HttpProblem extends Error {
  readonly status: number
  readonly code: ErrorCode

  constructor(status: number, code: ErrorCode, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

const READ_BY_PATH = new Map(READ_TOOLS.map((tool) => [`${API_PREFIX}/tools/${tool.name}`, tool]))
const WRITE_BY_PATH = new Map(WRITE_TOOLS.map((tool) => [`${API_PREFIX}/tools/${tool.name}`, tool]))
const SYNC_PREFIX = `${API_PREFIX}/sync/`

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  })
  response.end(text)
}

function sendError(
  response: ServerResponse,
  status: number,
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
): void {
  const body: ErrorBody = {error: {code, message}}
  send(response, status, body, headers)
}

function invalid(error: z.ZodError, what: string): HttpProblem {
  return new HttpProblem(
    400,
    'invalid_request',
    `${what} does not match the contract: ${z.prettifyError(error).replaceAll('\n', '; ')}`,
  )
}

async function readBody(request: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request) {
    size += (chunk as Buffer).length
    if (size > limit) throw new HttpProblem(413, 'invalid_request', `request body over ${limit} bytes`)
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    throw new HttpProblem(
      400,
      'invalid_request',
      'the request body is not JSON: expected the tool arguments as a JSON object',
    )
  }
}

/** A promise chain: writes run one at a time, in arrival order. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work, work)
    this.tail = next.catch(() => undefined)
    return next
  }
}

/** Creates (does not start) the server, on node:http. */
export function createInventoryServer(options: InventoryServerOptions): Server {
  return createServer({keepAliveTimeout: 10_000}, inventoryRequestHandler(options))
}

/**
 * The request handler alone, for a server of another kind: node:https with a certificate, or
 * mounted behind an existing one.
 */
export function inventoryRequestHandler(
  options: InventoryServerOptions,
): (request: IncomingMessage, response: ServerResponse) => void {
  const {inventory} = options
  const expectedToken = options.token === undefined ? undefined : digest(options.token)
  const writes = new Serial()
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024

  const authorized = (request: IncomingMessage): boolean => {
    if (!expectedToken) return true
    const header = request.headers.authorization ?? ''
    const match = /^Bearer (.+)$/i.exec(header)
    return match !== null && timingSafeEqual(digest(match[1].trim()), expectedToken)
  }

  const handleWrite = async (
    request: IncomingMessage,
    response: ServerResponse,
    tool: (typeof WRITE_TOOLS)[number],
    path: string,
  ) => {
    const key = IdempotencyKey.safeParse(request.headers['idempotency-key'])
    if (!key.success)
      throw new HttpProblem(
        400,
        'invalid_request',
        'a write needs an Idempotency-Key header (8 to 200 visible ASCII characters); found ' +
          (request.headers['idempotency-key'] === undefined ? 'none' : 'an invalid one'),
      )
    const body = await readBody(request, maxBodyBytes)
    const parsed = tool.args.safeParse(body)
    if (!parsed.success) throw invalid(parsed.error, `the arguments of ${tool.name}`)
    const {reason: _reason, ...target} = parsed.data as Record<string, unknown>
    const context = {
      idempotencyKey: key.data,
      runId: String(request.headers['invagent-run-id'] ?? 'http'),
      findingId: String(request.headers['invagent-finding-id'] ?? 'http'),
    }
    const log = (outcome: WriteLogEntry['outcome'], message: string) =>
      options.logWrite?.({
        at: new Date().toISOString(),
        tool: tool.name,
        idempotency_key: key.data,
        run_id: context.runId,
        finding_id: context.findingId,
        target,
        outcome,
        message,
      })
    const slow = options.faults?.({method: 'POST', path, phase: 'before-apply'})
    if (slow?.kind === 'crash') return void request.socket.destroy()
    if (slow?.kind === 'stall') await sleep(slow.ms)
    let outcome
    try {
      outcome = await writes.run(() =>
        inventory.writeOnce(tool.name as WriteToolName, parsed.data as ToolArgs<WriteToolName>, context),
      )
    } catch (error) {
      log(error instanceof ToolFailure ? 'tool_failed' : 'error', (error as Error).message)
      throw error
    }
    if (outcome.kind === 'conflict') {
      log('conflict', `key already used for ${outcome.recordedTool} with other arguments`)
      throw new HttpProblem(
        422,
        'idempotency_key_reused',
        `Idempotency-Key ${key.data} was already used for ${outcome.recordedTool} with other arguments: ` +
          'use a new key for a new write',
      )
    }
    log(
      outcome.kind === 'replayed' ? 'replayed' : outcome.result.applied ? 'applied' : 'unchanged',
      outcome.result.message,
    )
    const fault = options.faults?.({method: 'POST', path, phase: 'after-apply'})
    if (fault?.kind === 'crash') return void request.socket.destroy()
    if (fault?.kind === 'malformed') return void malformed(response)
    send(response, 200, outcome.result, outcome.kind === 'replayed' ? {'idempotent-replayed': 'true'} : {})
  }

  const handleSync = async (response: ServerResponse, table: string, query: URLSearchParams) => {
    const parsed = SyncQuery.safeParse(Object.fromEntries(query))
    if (!parsed.success) throw invalid(parsed.error, 'the bulk read query')
    const request = {
      cursor: parsed.data.cursor,
      updatedSince: parsed.data.updated_since ?? 0,
      limit: parsed.data.limit ?? DEFAULT_PAGE_ROWS,
    }
    const page =
      table === 'deletions'
        ? await inventory.deletions(request)
        : await inventory.syncPage(table as SyncTableName, request)
    if (!page)
      throw new HttpProblem(
        400,
        'invalid_request',
        `cursor "${request.cursor}" was not issued by this server: restart the read without a cursor`,
      )
    send(response, 200, page)
  }

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://inventory')
    const path = url.pathname
    const method = request.method ?? 'GET'
    const fault = options.faults?.({method, path, phase: 'before'})
    if (fault?.kind === 'crash') return void request.socket.destroy()
    if (fault?.kind === 'stall') await sleep(fault.ms)
    if (fault?.kind === 'respond') {
      response.writeHead(fault.status, {
        'content-type': 'application/json',
        ...(fault.retryAfter === undefined ? {} : {'retry-after': fault.retryAfter}),
      })
      return void response.end(
        fault.body ??
          JSON.stringify({
            error: {code: fault.status === 429 ? 'rate_limited' : 'unavailable', message: `injected ${fault.status}`},
          }),
      )
    }
    if (method === 'GET' && path === '/health') return send(response, 200, {status: 'ok', contract: CONTRACT_VERSION})
    if (!authorized(request)) {
      throw new HttpProblem(
        401,
        'unauthorized',
        'missing or wrong bearer token: send `Authorization: Bearer <token>` ' +
          'with the token the server was started with',
      )
    }
    const readTool = READ_BY_PATH.get(path)
    const writeTool = WRITE_BY_PATH.get(path)
    const isSync =
      path.startsWith(SYNC_PREFIX) && [...SYNC_TABLE_NAMES, 'deletions'].includes(path.slice(SYNC_PREFIX.length))
    const isRows = path === ROWS_PATH || path === RESERVATION_PATH
    const known = readTool || writeTool || isSync || isRows || path === `${API_PREFIX}/info`
    if (!known)
      throw new HttpProblem(404, 'not_found', `no endpoint ${path}: see schemas/openapi.json for the contract`)
    const expectedMethod = writeTool ? 'POST' : 'GET'
    if (method !== expectedMethod)
      throw new HttpProblem(405, 'invalid_request', `${path} expects ${expectedMethod}, not ${method}`)
    if (path === `${API_PREFIX}/info`) return send(response, 200, await inventory.info())
    if (isSync) return handleSync(response, path.slice(SYNC_PREFIX.length), url.searchParams)
    if (writeTool) return handleWrite(request, response, writeTool, path)
    if (path === ROWS_PATH) {
      const query: Record<string, string[]> = {}
      for (const [name, value] of url.searchParams) (query[name] ??= []).push(value)
      const parsed = RowsQuery.safeParse(query)
      if (!parsed.success) throw invalid(parsed.error, 'the row selection')
      const rows = await inventory.backend.readRows({
        parts: parsed.data.part,
        ledgers: parsed.data.ledger,
        transactions: parsed.data.transaction,
        externalRefs: parsed.data.external_ref,
      })
      if (fault?.kind === 'malformed') return malformed(response)
      return send(response, 200, rows)
    }
    if (path === RESERVATION_PATH) {
      const parsed = ReservationQuery.safeParse(Object.fromEntries(url.searchParams))
      if (!parsed.success) throw invalid(parsed.error, 'the reservation query')
      return send(response, 200, await inventory.backend.getReservation(parsed.data.reservation_id))
    }
    const args = readTool!.args.safeParse(readArgsFromQuery(readTool!, url.searchParams))
    if (!args.success) throw invalid(args.error, `the arguments of ${readTool!.name}`)
    const result = await callReadTool(
      inventory.backend,
      readTool!.name as ReadToolName,
      args.data as Record<string, unknown>,
    )
    if (fault?.kind === 'malformed') return malformed(response)
    send(response, 200, result)
  }

  return (request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (response.headersSent || request.socket.destroyed) return void response.destroy()
      if (error instanceof HttpProblem) return sendError(response, error.status, error.code, error.message)
      if (error instanceof ToolFailure) return sendError(response, 422, 'tool_failed', error.message)
      if (isBusy(error)) {
        // Another writer held the database past the busy timeout; nothing was applied, so a retry is safe.
        const message = `the inventory is busy with another writer: ${(error as Error).message}; retry shortly`
        return sendError(response, 503, 'unavailable', message, {'retry-after': '1'})
      }
      sendError(response, 500, 'internal', `the inventory failed: ${(error as Error).message}`)
    })
  }
}

/** SQLITE_BUSY or SQLITE_LOCKED from node:sqlite (its errors carry the primary result code as errcode). */
function isBusy(error: unknown): boolean {
  const errcode = (error as {errcode?: number}).errcode
  return errcode !== undefined && [5, 6].includes(errcode & 0xff)
}

function malformed(response: ServerResponse): void {
  response.writeHead(200, {'content-type': 'application/json'})
  response.end('{"applied": tru')
}

/** Starts listening; resolves with the base URL (port 0 picks a free one). */
export async function listen(server: Server | HttpsServer, host: string, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `http://${shownHost}:${address.port}`
}

/** Stops accepting, drops idle keep-alive connections, and resolves when every connection is gone. */
export async function closeServer(server: Server | HttpsServer): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeIdleConnections()
  })
}
