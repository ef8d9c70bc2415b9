import {setTimeout as sleep} from 'node:timers/promises'

import {Ajv2020} from 'ajv/dist/2020.js'
import type {z} from 'zod'

import {ConfigError, InvagentError} from '../../errors.js'
import {ToolFailure} from '../backend.js'
import {toJsonSchema} from '../../tools/json-schema.js'
import {ErrorBody} from './contract.js'

/*
 * The HTTP side of the REST contract: every request has a timeout; 429, 502, 503, 504, timeouts
 * and dropped connections are retried with exponential backoff and jitter, honouring Retry-After.
 * A write is only ever sent (and so only ever retried) with its Idempotency-Key: the server
 * applies it at most once whatever happens to the answer. Responses are checked against the
 * contract's zod schemas. Uses Node's own fetch, so https goes through Node's TLS (and
 * NODE_EXTRA_CA_CERTS for a private CA).
 */

export interface HttpClientOptions {
  baseUrl: string
  token?: string
  /** Per attempt, until the whole body has arrived (default 10 s). */
  timeoutMs?: number
  /** Attempts per request, the first included (default 5). */
  maxAttempts?: number
  /** First backoff delay; doubles per attempt up to maxDelayMs (defaults 200 ms and 5 s). */
  baseDelayMs?: number
  maxDelayMs?: number
  /** A Retry-After longer than this fails the request instead of waiting (default 60 s). */
  maxRetryAfterMs?: number
}

/** A request to the inventory's HTTP API failed for good. `status` is 0 when no answer came. */
export class HttpInventoryError extends InvagentError {
  readonly status: number
  readonly attempts: number
  /** True when the server may have acted on the request (no answer, or an answer that could not be read). */
  readonly maybeApplied: boolean

  constructor(
    message: string,
    details: {
      status: number
      attempts: number
      maybeApplied: boolean
      code?: string
      suggestions?: string[]
      cause?: unknown
    },
  ) {
    super(message, {
      code: details.code ?? 'HTTP_INVENTORY',
      exitCode: 3,
      suggestions: details.suggestions,
      cause: details.cause,
    })
    this.status = details.status
    this.attempts = details.attempts
    this.maybeApplied = details.maybeApplied
  }
}

const RETRY_STATUSES = new Set([429, 502, 503, 504])

/** What a response is checked against: a zod schema, or anything with the same safeParse (ajv for bulk pages). */
export interface ResponseSchema<T> {
  safeParse(
    value: unknown,
  ): {success: true; data: T} | {success: false; error: {issues: ReadonlyArray<{message: string; path: PropertyKey[]}>}}
}

const ajv = new Ajv2020({strict: false})

/**
 * A compiled JSON Schema check of a zod schema, for bulk pages: thousands of rows a page, where
 * ajv's generated code is several times faster than zod's parse. Values pass through unchanged.
 */
export function compiledSchema<T>(schema: z.ZodType<T>): ResponseSchema<T> {
  const validate = ajv.compile(toJsonSchema(schema, 'input'))
  return {
    safeParse(value: unknown) {
      if (validate(value)) return {success: true, data: value as T}
      const issues = (validate.errors ?? []).map((error) => ({
        message: error.message ?? 'invalid',
        path: error.instancePath.split('/').filter(Boolean),
      }))
      return {success: false, error: {issues}}
    },
  }
}

/** Seconds or an HTTP date, in milliseconds from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

type Attempt = {kind: 'answer'; response: Response; text: string} | {kind: 'no-answer'; error: Error; timedOut: boolean}

export class InventoryHttpClient {
  readonly baseUrl: string
  private readonly token: string | undefined
  private readonly timeoutMs: number
  private readonly maxAttempts: number
  private readonly baseDelayMs: number
  private readonly maxDelayMs: number
  private readonly maxRetryAfterMs: number
  /** Requests sent, retries included (for tests and the benchmark). */
  requests = 0

  constructor(options: HttpClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.token = options.token
    this.timeoutMs = options.timeoutMs ?? 10_000
    this.maxAttempts = options.maxAttempts ?? 5
    this.baseDelayMs = options.baseDelayMs ?? 200
    this.maxDelayMs = options.maxDelayMs ?? 5000
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000
  }

  async get<T>(path: string, schema: ResponseSchema<T>): Promise<T> {
    return this.request('GET', path, schema)
  }

  /** A write: the key is what makes retrying it safe, so there is no way to send one without. */
  async post<T>(
    path: string,
    body: unknown,
    schema: ResponseSchema<T>,
    headers: {idempotencyKey: string; runId?: string; findingId?: string},
  ): Promise<T> {
    const extra: Record<string, string> = {
      'idempotency-key': headers.idempotencyKey,
      'content-type': 'application/json',
    }
    if (headers.runId) extra['invagent-run-id'] = headers.runId
    if (headers.findingId) extra['invagent-finding-id'] = headers.findingId
    return this.request('POST', path, schema, JSON.stringify(body), extra)
  }

  private async attempt(
    method: string,
    url: string,
    body: string | undefined,
    headers: Record<string, string>,
  ): Promise<Attempt> {
    this.requests++
    const signal = AbortSignal.timeout(this.timeoutMs)
    try {
      const response = await fetch(url, {method, body, headers, signal})
      return {kind: 'answer', response, text: await response.text()}
    } catch (error) {
      const timedOut = signal.aborted
      return {kind: 'no-answer', error: error as Error, timedOut}
    }
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1))
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2)
  }

  private async request<T>(
    method: string,
    path: string,
    schema: ResponseSchema<T>,
    body?: string,
    extraHeaders: Record<string, string> = {},
  ): Promise<T> {
    const url = `${this.baseUrl}${path}`
    const headers: Record<string, string> = {accept: 'application/json', ...extraHeaders}
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    const isWrite = method === 'POST'
    for (let attempt = 1; ; attempt++) {
      const result = await this.attempt(method, url, body, headers)
      const last = attempt >= this.maxAttempts
      if (result.kind === 'no-answer') {
        const cause = describeCause(result.error)
        if (isTlsFailure(cause)) {
          // A certificate that does not verify will not verify on a retry either.
          throw new HttpInventoryError(`${method} ${url}: the TLS handshake failed (${cause})`, {
            status: 0,
            attempts: attempt,
            maybeApplied: false,
            code: 'HTTP_TLS',
            suggestions: [
              "Check the server's certificate; for a private CA, point NODE_EXTRA_CA_CERTS at its certificate (PEM).",
            ],
            cause: result.error,
          })
        }
        const what = result.timedOut ? `no complete answer within ${this.timeoutMs} ms` : `no answer (${cause})`
        if (!last) {
          await sleep(this.backoff(attempt))
          continue
        }
        throw new HttpInventoryError(`${method} ${url}: ${what}, after ${attempt} attempt${attempt > 1 ? 's' : ''}`, {
          status: 0,
          attempts: attempt,
          maybeApplied: isWrite,
          code: result.timedOut ? 'HTTP_TIMEOUT' : 'HTTP_UNREACHABLE',
          suggestions: [
            'Check that the inventory server is running and reachable (`invagent doctor`), then run again.',
          ],
          cause: result.error,
        })
      }
      const {response, text} = result
      if (response.ok) return this.parse(method, url, text, schema, attempt)
      const problem = ErrorBody.safeParse(safeJson(text))
      const message = problem.success ? problem.data.error.message : text.slice(0, 200)
      if (RETRY_STATUSES.has(response.status)) {
        const retryAfter = parseRetryAfter(response.headers.get('retry-after'))
        if (retryAfter !== undefined && retryAfter > this.maxRetryAfterMs) {
          throw new HttpInventoryError(
            `${method} ${url}: ${response.status}, and the server asks to wait ${Math.round(retryAfter / 1000)} s ` +
              `(more than the ${this.maxRetryAfterMs / 1000} s allowed)`,
            {
              status: response.status,
              attempts: attempt,
              maybeApplied: false,
              code: 'HTTP_RATE_LIMITED',
              suggestions: ['Run again later.'],
            },
          )
        }
        if (!last) {
          await sleep(retryAfter ?? this.backoff(attempt))
          continue
        }
        throw new HttpInventoryError(
          `${method} ${url}: still ${response.status} after ${attempt} attempts: ${message}`,
          {
            status: response.status,
            attempts: attempt,
            maybeApplied: false,
            code: response.status === 429 ? 'HTTP_RATE_LIMITED' : 'HTTP_UNAVAILABLE',
            suggestions: ['The inventory server is overloaded or down; run again later.'],
          },
        )
      }
      if (response.status === 422 && problem.success && problem.data.error.code === 'tool_failed')
        throw new ToolFailure(message)
      if (response.status === 401) {
        throw new ConfigError(`${url} refused the token (401): ${message}`, {
          code: 'HTTP_UNAUTHORIZED',
          suggestions: ['Set INVAGENT_TOKEN, or pass --token-file with the token the server was started with.'],
        })
      }
      throw new HttpInventoryError(
        `${method} ${url}: ${response.status} ` +
          `${problem.success ? problem.data.error.code : 'with a body outside the contract'}: ${message}`,
        {
          status: response.status,
          attempts: attempt,
          // A 5xx other than the retried ones may come after the server acted; a 4xx never does.
          maybeApplied: isWrite && response.status >= 500,
          code: 'HTTP_REQUEST_FAILED',
        },
      )
    }
  }

  private parse<T>(method: string, url: string, text: string, schema: ResponseSchema<T>, attempts: number): T {
    const json = safeJson(text)
    const parsed = json === undefined ? undefined : schema.safeParse(json)
    if (parsed?.success) return parsed.data
    const found =
      json === undefined
        ? `text that is not JSON (${JSON.stringify(text.slice(0, 80))})`
        : 'JSON that does not match: ' +
          `${parsed!.error.issues[0]?.message ?? ''} at ${parsed!.error.issues[0]?.path.join('.') ?? ''}`
    throw new HttpInventoryError(`${method} ${url}: expected a response in the contract's shape, found ${found}`, {
      status: 200,
      attempts,
      maybeApplied: method === 'POST',
      code: 'HTTP_CONTRACT',
      suggestions: ['The server does not implement the contract in schemas/openapi.json; check its version and logs.'],
    })
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function isTlsFailure(cause: string): boolean {
  return /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME/i.test(cause)
}

function describeCause(error: Error): string {
  const cause = (error as {cause?: {code?: string; message?: string}}).cause
  return cause?.code ?? cause?.message ?? error.message
}
