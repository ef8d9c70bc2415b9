import type {InterruptedError} from '../process/interrupt.js'
import {exposesBeyondLoopback, startLlamaServer, type LlamaServerOptions} from './serve.js'

/*
 * `invagent serve` as a library function: start, report each event as one line, wait until
 * stopped (Ctrl+C / SIGTERM through `options.signal`) or until the restarts are exhausted.
 */

export interface ServeReadyLine {
  event: 'ready'
  url: string
  /** The OpenAI-compatible API: `${url}/v1`. */
  openaiBaseUrl: string
  pid: number | null
  model: string
  host: string
  port: number
  ctxSize: number
  threads: number
  parallel: number
  llamaServer: string
  llamaServerSource: 'flag' | 'env' | 'path' | 'cache'
  args: string[]
  startupMs: number
  restarts: number
}

export interface ServeExitedLine {
  event: 'exited'
  pid: number | null
  exitCode: number | null
  signal: string | null
  uptimeMs: number
}

export interface ServeRestartingLine {
  event: 'restarting'
  attempt: number
  delayMs: number
}

export interface ServeStoppedLine {
  event: 'stopped'
  url: string
  restarts: number
  /** The signal that asked for the stop, when one did. */
  signal: string | null
}

export type ServeEventLine = ServeReadyLine | ServeExitedLine | ServeRestartingLine
export type ServeLine = ServeEventLine | ServeStoppedLine

export interface ServeOutput {
  /** One line per event, as it happens. */
  line(line: ServeEventLine): void
  /** A human notice (warnings). */
  notice(message: string): void
}

/** The human rendering of one event line. */
export function describeServerEvent(line: ServeLine): string {
  switch (line.event) {
    case 'ready':
      return [
        `llama-server ${line.restarts > 0 ? `restarted (${line.restarts}) and ` : ''}ready at ${line.url} in ${(line.startupMs / 1000).toFixed(1)} s (pid ${line.pid})`,
        `  OpenAI-compatible API: ${line.openaiBaseUrl}`,
        `  model ${line.model}; ctx ${line.ctxSize}, threads ${line.threads}, parallel ${line.parallel}`,
        `  llama-server ${line.llamaServer} (from ${line.llamaServerSource})`,
        ...(line.restarts > 0 ? [] : ['Ctrl+C stops it.']),
      ].join('\n')
    case 'exited':
      return `llama-server (pid ${line.pid}) ${line.signal ? `was killed by ${line.signal}` : `exited with code ${line.exitCode}`} after ${(line.uptimeMs / 1000).toFixed(1)} s`
    case 'restarting':
      return `restarting llama-server in ${(line.delayMs / 1000).toFixed(1)} s (attempt ${line.attempt})`
    case 'stopped':
      return `llama-server stopped${line.signal ? ` (${line.signal})` : ''}; ${line.restarts} restart${line.restarts === 1 ? '' : 's'}.`
  }
}

/** Serves until stopped; resolves with the final line, rejects when llama-server could not be kept up. */
export async function serveUntilStopped(options: LlamaServerOptions, output: ServeOutput): Promise<ServeStoppedLine> {
  const host = options.host ?? '127.0.0.1'
  if (exposesBeyondLoopback(host)) {
    output.notice(`Warning: listening on ${host} exposes the model to other machines, without authentication.`)
  }
  let readyLine: ServeReadyLine | undefined
  let restarts = 0
  let firstStartupMs = 0
  const server = await startLlamaServer({
    ...options,
    onEvent: (event) => {
      if (event.type === 'server-ready' && readyLine) {
        // A restart: same settings, new process.
        restarts++
        output.line({...readyLine, pid: event.pid ?? null, startupMs: event.startupMs, restarts})
      } else if (event.type === 'server-ready') {
        firstStartupMs = event.startupMs
      } else if (event.type === 'server-exited') {
        output.line({
          event: 'exited',
          pid: event.pid ?? null,
          exitCode: event.exitCode ?? null,
          signal: event.signal ?? null,
          uptimeMs: event.uptimeMs,
        })
      } else if (event.type === 'server-restarting') {
        output.line({event: 'restarting', attempt: event.attempt, delayMs: event.delayMs})
      }
      options.onEvent?.(event)
    },
  })
  const index = (flag: string) => Number(server.args[server.args.indexOf(flag) + 1])
  readyLine = {
    event: 'ready',
    url: server.url,
    openaiBaseUrl: `${server.url}/v1`,
    pid: server.pid ?? null,
    model: server.model,
    host: server.host,
    port: server.port,
    ctxSize: index('--ctx-size'),
    threads: index('--threads'),
    parallel: index('--parallel'),
    llamaServer: server.binary.path,
    llamaServerSource: server.binary.source,
    args: [...server.args],
    startupMs: firstStartupMs,
    restarts: 0,
  }
  output.line(readyLine)
  await server.closed
  const reason = options.signal?.reason as InterruptedError | undefined
  return {event: 'stopped', url: server.url, restarts: server.restarts, signal: reason?.signalName ?? null}
}
