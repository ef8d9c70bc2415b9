import {createInterface} from 'node:readline'

import {execa, type ResultPromise} from 'execa'

import {ExternalToolError} from '../errors.js'
import {createDebugLog} from './debug-log.js'
import {
  DEFAULT_KILL_GRACE_MS,
  formatCommandLine,
  STDERR_TAIL_LINES,
  type LineListener,
  type OutputStreamName,
} from './run-process.js'

const debug = createDebugLog('invagent:process')

export interface SpawnLongRunningOptions {
  cwd?: string
  /** Variables added to (or, with `undefined`, removed from) the parent's environment. */
  env?: Record<string, string | undefined>
  /** Every line the daemon writes, as it writes it. */
  onLine?: LineListener
  /** How many of the last stderr lines to keep (default 40). */
  tailLines?: number
  /** Aborting it stops the daemon (as `stop()` does). */
  signal?: AbortSignal
  /** Milliseconds between SIGTERM and SIGKILL in `stop()` (default 5 s). */
  killGraceMs?: number
}

/** How a daemon ended. */
export interface ProcessExit {
  exitCode: number | undefined
  signal: string | undefined
  /** True when it ended because `stop()` (or the abort signal) asked it to. */
  stopped: boolean
  /** Set when it could not be started at all (command not found, …). */
  spawnError?: Error
}

/** A started daemon. Output is not accumulated beyond the stderr tail, so it can run for days. */
export interface LongRunningProcess extends AsyncDisposable {
  readonly child: ResultPromise
  readonly pid: number | undefined
  /** The command line, quoted for a shell. */
  readonly command: string
  /** Settles (never rejects) when the process has exited. */
  readonly exited: Promise<ProcessExit>
  /** True until the process has exited. */
  readonly running: boolean
  /** The last lines it wrote to stderr, oldest first. */
  stderrTail(): string
  /** SIGTERM, then SIGKILL after the grace period; resolves once it has exited. Idempotent. */
  stop(graceMs?: number): Promise<ProcessExit>
  /** An ExternalToolError describing how it ended, with the stderr tail. */
  failure(message: string, suggestions?: string[]): ExternalToolError
}

/** A fixed-size ring of the most recent lines. */
export class LineRing {
  private readonly lines: string[] = []
  private next = 0
  readonly capacity: number

  constructor(capacity: number) {
    this.capacity = capacity
  }

  push(line: string): void {
    if (this.capacity <= 0) return
    if (this.lines.length < this.capacity) this.lines.push(line)
    else this.lines[this.next] = line
    this.next = (this.next + 1) % this.capacity
  }

  toArray(): string[] {
    return this.lines.length < this.capacity
      ? [...this.lines]
      : [...this.lines.slice(this.next), ...this.lines.slice(0, this.next)]
  }

  toString(): string {
    return this.toArray().join('\n')
  }
}

/**
 * Starts a daemon (llama-server, an sshd for tests, …) and returns at once; nothing waits for it
 * to be ready. execa's `cleanup` kills it when this process exits normally or on a signal.
 */
export function spawnLongRunning(
  file: string,
  args: readonly string[],
  options: SpawnLongRunningOptions = {},
): LongRunningProcess {
  const command = formatCommandLine(file, args)
  const tail = new LineRing(options.tailLines ?? STDERR_TAIL_LINES)
  const graceDefault = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS
  let stopRequested = false
  let running = true
  let lastExit: ProcessExit | undefined

  debug(`spawn ${command}${options.cwd ? ` (cwd ${options.cwd})` : ''}`)
  const child = execa(file, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: true,
    stdin: 'ignore',
    stdout: options.onLine ? 'pipe' : 'ignore',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    cleanup: true,
  })

  const follow = (stream: NodeJS.ReadableStream | null, name: OutputStreamName) => {
    if (!stream) return
    const lines = createInterface({input: stream, crlfDelay: Infinity})
    lines.on('line', (line) => {
      if (name === 'stderr') tail.push(line)
      options.onLine?.(line, name)
    })
  }
  follow(child.stdout, 'stdout')
  follow(child.stderr, 'stderr')

  const exited: Promise<ProcessExit> = child.then(
    async (result) => {
      // Let readline deliver the last, unterminated line before anyone reads the tail.
      await new Promise((resolve) => setImmediate(resolve))
      running = false
      const exit: ProcessExit = {exitCode: result.exitCode, signal: result.signal, stopped: stopRequested}
      if (result.failed && result.exitCode === undefined && result.signal === undefined)
        exit.spawnError = result as unknown as Error
      lastExit = exit
      debug(
        `exited ${command}: code ${exit.exitCode ?? '-'} signal ${exit.signal ?? '-'}${exit.stopped ? ' (stopped)' : ''}`,
      )
      return exit
    },
    (error: Error) => {
      running = false
      return {exitCode: undefined, signal: undefined, stopped: stopRequested, spawnError: error}
    },
  )

  let stopping: Promise<ProcessExit> | undefined
  const stop = (graceMs = graceDefault): Promise<ProcessExit> => {
    stopping ??= (async () => {
      stopRequested = true
      if (!running) return exited
      debug(`stop ${command} (SIGTERM, SIGKILL after ${graceMs} ms)`)
      child.kill('SIGTERM')
      const timer = setTimeout(() => {
        if (running) {
          debug(`SIGKILL ${command}`)
          child.kill('SIGKILL')
        }
      }, graceMs)
      try {
        return await exited
      } finally {
        clearTimeout(timer)
      }
    })()
    return stopping
  }

  if (options.signal) {
    const onAbort = () => void stop()
    if (options.signal.aborted) onAbort()
    else {
      options.signal.addEventListener('abort', onAbort, {once: true})
      void exited.then(() => options.signal!.removeEventListener('abort', onAbort))
    }
  }

  return {
    child,
    pid: child.pid,
    command,
    exited,
    get running() {
      return running
    },
    stderrTail: () => tail.toString(),
    stop,
    failure(message: string, suggestions?: string[]) {
      const stderrTail = tail.toString()
      return new ExternalToolError(
        stderrTail === '' ? message : `${message}\n--- last lines of its stderr ---\n${stderrTail}`,
        {
          command,
          exitCode: lastExit?.exitCode,
          stderrTail,
          suggestions,
        },
      )
    },
    async [Symbol.asyncDispose]() {
      await stop()
    },
  }
}
