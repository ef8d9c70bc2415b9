import {statSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {basename, resolve} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {ExternalToolError, UserError} from '../errors.js'
import {spawnLongRunning, type LongRunningProcess, type ProcessExit} from '../process/long-running.js'
import type {LineListener} from '../process/run-process.js'
import {findLlamaBinary, type LocatedLlamaBinary} from './locate.js'
import {isLoopbackHost, reservePort} from './port.js'

/*
 * A supervised llama-server: every flag explicit, ready only when GET /health answers 200 from
 * the process we started, restarted with exponential backoff when it dies, and stopped without
 * leaving a process behind.
 */

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 8080
export const DEFAULT_CTX_SIZE = 4096
export const DEFAULT_PARALLEL = 1

export interface RestartPolicy {
  /** Consecutive failed starts (or crashes soon after starting) before giving up. */
  maxAttempts: number
  /** Delay before the first restart; doubles with each consecutive failure. */
  initialDelayMs: number
  maxDelayMs: number
  /** A server that stayed up this long resets the count of consecutive failures. */
  healthyAfterMs: number
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  maxAttempts: 5,
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  healthyAfterMs: 60_000,
}

export interface LlamaServerOptions {
  /** Path of the GGUF model. */
  model: string
  host?: string
  /** 0 picks a free port. */
  port?: number
  /** Total context, shared by the `parallel` slots (each gets ctxSize / parallel). */
  ctxSize?: number
  /** Default: the available cores (llama.cpp's own default is slower on small machines). */
  threads?: number
  parallel?: number
  /** --llama-server's value; otherwise INVAGENT_LLAMA_SERVER, PATH, the build cache. */
  llamaServer?: string
  /** How long loading the model may take before giving up (default 5 minutes). */
  readyTimeoutMs?: number
  /** `false`: no restarts, `closed` rejects at the first crash. */
  restart?: Partial<RestartPolicy> | false
  /** Aborting it stops the server. */
  signal?: AbortSignal
  onEvent?: (event: LlamaServerEvent) => void
  /** Every line llama-server writes. */
  onLine?: LineListener
  /** Flags after invagent's own, e.g. `--embedding` for a server that only computes embeddings. */
  extraArgs?: readonly string[]
}

export type LlamaServerEvent =
  | {type: 'server-starting'; attempt: number; command: string}
  | {type: 'server-ready'; url: string; pid: number | undefined; startupMs: number}
  | {
      type: 'server-exited'
      pid: number | undefined
      exitCode: number | undefined
      signal: string | undefined
      uptimeMs: number
    }
  | {type: 'server-restarting'; attempt: number; delayMs: number}
  | {type: 'server-gave-up'; attempts: number; message: string}
  | {type: 'server-stopped'}

export interface LlamaServer extends AsyncDisposable {
  /** `http://host:port`, without a trailing slash; the OpenAI-compatible API is under /v1. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly model: string
  readonly binary: LocatedLlamaBinary
  readonly args: readonly string[]
  /** The current llama-server process (changes on restart). */
  readonly pid: number | undefined
  readonly restarts: number
  /** Resolves once stopped; rejects with an ExternalToolError when the restarts were exhausted. */
  readonly closed: Promise<void>
  stderrTail(): string
  /** Stops the server (SIGTERM, SIGKILL after 5 s) and the supervision. Idempotent. */
  stop(): Promise<void>
}

interface ResolvedServerSettings {
  model: string
  host: string
  port: number
  ctxSize: number
  threads: number
  parallel: number
}

/**
 * The full llama-server command line: nothing left to a llama-server default that matters to
 * invagent (checked against `llama-server --help` of the llama.cpp node-llama-cpp ships):
 * - `--parallel` is given, so the KV cache is not unified and each slot has ctx-size / parallel;
 * - `--fit off`: llama-server would otherwise shrink unset settings to fit memory; every setting
 *   here is set, and a model that does not fit should fail rather than change behaviour;
 * - `--no-context-shift`: a prompt that overflows fails instead of silently losing its front
 *   (the server engine counts tokens first, DESIGN §6);
 * - `--jinja`: the model's own chat template, the one the prompt renderer targets;
 * - `--offline`, and no -hf / --model-url: nothing is downloaded; `--no-webui`: an API only;
 * - `--log-colors off`: the stderr tail in error messages stays readable.
 */
export function llamaServerArgs(settings: ResolvedServerSettings): string[] {
  return [
    '--model',
    settings.model,
    '--alias',
    basename(settings.model).replace(/\.gguf$/i, ''),
    '--host',
    settings.host,
    '--port',
    String(settings.port),
    '--ctx-size',
    String(settings.ctxSize),
    '--threads',
    String(settings.threads),
    '--threads-batch',
    String(settings.threads),
    '--parallel',
    String(settings.parallel),
    '--fit',
    'off',
    '--no-context-shift',
    '--jinja',
    '--offline',
    '--no-webui',
    '--log-colors',
    'off',
  ]
}

/** llama-server reads LLAMA_ARG_* variables as flags: remove them so the command line is the whole truth. */
function withoutLlamaArgEnvironment(): Record<string, undefined> {
  return Object.fromEntries(
    Object.keys(process.env)
      .filter((name) => name.startsWith('LLAMA_ARG_'))
      .map((name) => [name, undefined]),
  )
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new UserError(`${name} must be a positive integer, got ${value}`)
  return value
}

function requireModelFile(model: string): string {
  const path = resolve(model)
  let isFile = false
  try {
    isFile = statSync(path).isFile()
  } catch {
    isFile = false
  }
  if (!isFile) {
    throw new UserError(`model file not found: ${path}`, {
      code: 'MODEL_NOT_FOUND',
      suggestions: ['Give the path of a GGUF file with --model (models/*.gguf are listed by `invagent doctor`).'],
    })
  }
  return path
}

/** GET /health once: true on 200 (503 means still loading). */
async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/health`, {signal: AbortSignal.timeout(2000)})
    await response.body?.cancel()
    return response.status === 200
  } catch {
    return false
  }
}

function describeExit(exit: ProcessExit): string {
  if (exit.spawnError) return `could not be started (${exit.spawnError.message.split('\n')[0]})`
  if (exit.signal) return `was killed by ${exit.signal}`
  return `exited with code ${exit.exitCode}`
}

/**
 * Starts llama-server and resolves when it answers GET /health with 200. A server that exits
 * before that rejects at once with the tail of its stderr. After that it is supervised: when it
 * dies it is restarted (same port) with exponential backoff, until it has failed
 * `restart.maxAttempts` times in a row; then `closed` rejects.
 */
export async function startLlamaServer(options: LlamaServerOptions): Promise<LlamaServer> {
  options.signal?.throwIfAborted()
  const model = requireModelFile(options.model)
  const host = options.host ?? DEFAULT_HOST
  const binary = await findLlamaBinary('llama-server', options.llamaServer)
  const port = await reservePort(host, options.port ?? DEFAULT_PORT)
  const settings: ResolvedServerSettings = {
    model,
    host,
    port,
    ctxSize: positiveInteger('ctx size', options.ctxSize ?? DEFAULT_CTX_SIZE),
    threads: positiveInteger('threads', options.threads ?? availableParallelism()),
    parallel: positiveInteger('parallel', options.parallel ?? DEFAULT_PARALLEL),
  }
  const args = [...llamaServerArgs(settings), ...(options.extraArgs ?? [])]
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  const policy: RestartPolicy | undefined =
    options.restart === false ? undefined : {...DEFAULT_RESTART_POLICY, ...options.restart}
  const readyTimeoutMs = options.readyTimeoutMs ?? 5 * 60_000
  const emit = (event: LlamaServerEvent) => options.onEvent?.(event)
  const stopController = new AbortController()
  let stopping = false
  let attempt = 0

  /** One llama-server process, returned once healthy; on failure it is stopped and an error thrown. */
  const launch = async (): Promise<LongRunningProcess> => {
    attempt++
    const started = performance.now()
    const child = spawnLongRunning(binary.path, args, {
      env: withoutLlamaArgEnvironment(),
      onLine: options.onLine,
      tailLines: 40,
    })
    emit({type: 'server-starting', attempt, command: child.command})
    let exit: ProcessExit | undefined
    void child.exited.then((value) => (exit = value))
    const deadline = Date.now() + readyTimeoutMs
    for (;;) {
      if (exit)
        throw child.failure(
          `llama-server ${describeExit(exit)} before it was ready (${child.command})`,
          crashSuggestions(binary),
        )
      if (stopping || options.signal?.aborted) {
        await child.stop()
        if (options.signal?.aborted) throw options.signal.reason
        throw new ExternalToolError('llama-server was stopped before it was ready', {command: child.command})
      }
      // Healthy, and still our process: a 200 from another server on this port must not count.
      if ((await healthy(url)) && child.running && !exit) {
        emit({type: 'server-ready', url, pid: child.pid, startupMs: Math.round(performance.now() - started)})
        return child
      }
      if (Date.now() > deadline) {
        await child.stop()
        throw child.failure(
          `llama-server did not answer ${url}/health with 200 within ${Math.round(readyTimeoutMs / 1000)} s`,
          ['Raise the timeout for a large model, or check the tail of its output above.'],
        )
      }
      await Promise.race([sleep(200), child.exited])
    }
  }

  let current = await launch()
  let readyAt = Date.now()
  let restarts = 0

  const supervise = async (): Promise<void> => {
    let consecutiveFailures = 0
    for (;;) {
      const exit = await current.exited
      if (stopping) return
      const uptimeMs = Date.now() - readyAt
      emit({type: 'server-exited', pid: current.pid, exitCode: exit.exitCode, signal: exit.signal, uptimeMs})
      let lastFailure = current.failure(`llama-server ${describeExit(exit)} after ${Math.round(uptimeMs / 1000)} s`)
      if (!policy) throw lastFailure
      consecutiveFailures = uptimeMs >= policy.healthyAfterMs ? 1 : consecutiveFailures + 1
      for (;;) {
        if (consecutiveFailures > policy.maxAttempts) {
          const message = `llama-server failed ${consecutiveFailures} times in a row; giving up.\n${lastFailure.message}`
          emit({type: 'server-gave-up', attempts: consecutiveFailures, message})
          throw new ExternalToolError(message, {
            command: lastFailure.command,
            exitCode: lastFailure.processExitCode,
            stderrTail: lastFailure.stderrTail,
            suggestions: crashSuggestions(binary),
          })
        }
        const delayMs = Math.min(policy.initialDelayMs * 2 ** (consecutiveFailures - 1), policy.maxDelayMs)
        emit({type: 'server-restarting', attempt: consecutiveFailures, delayMs})
        try {
          await sleep(delayMs, undefined, {signal: stopController.signal})
        } catch {
          return // stopped while waiting
        }
        if (stopping) return
        try {
          current = await launch()
          readyAt = Date.now()
          restarts++
          break
        } catch (error) {
          if (stopping) return
          lastFailure =
            error instanceof ExternalToolError
              ? error
              : new ExternalToolError(String(error), {command: args.join(' '), cause: error})
          consecutiveFailures++
        }
      }
    }
  }

  const closed = supervise()
  // Callers that never look at `closed` must not get an unhandled rejection.
  closed.catch(() => {})

  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true
      stopController.abort()
      await current.stop()
      await closed.catch(() => {})
      emit({type: 'server-stopped'})
    })()
    return stopped
  }
  if (options.signal) {
    if (options.signal.aborted) void stop()
    else options.signal.addEventListener('abort', () => void stop(), {once: true})
  }

  return {
    url,
    host,
    port,
    model,
    binary,
    args,
    get pid() {
      return current.pid
    },
    get restarts() {
      return restarts
    },
    closed,
    stderrTail: () => current.stderrTail(),
    stop,
    async [Symbol.asyncDispose]() {
      await stop()
    },
  }
}

function crashSuggestions(binary: LocatedLlamaBinary): string[] {
  return [
    'Check that --model is a GGUF file this llama.cpp can load (see the last lines of its output above).',
    `llama-server: ${binary.path} (found via ${binary.source}); \`invagent doctor\` checks it.`,
  ]
}

/** Whether serving on `host` exposes the model beyond this machine. */
export function exposesBeyondLoopback(host: string): boolean {
  return !isLoopbackHost(host)
}
