import {execa, type ExecaError} from 'execa'

import {ExternalToolError} from '../errors.js'
import {createDebugLog} from './debug-log.js'

/*
 * The one way invagent starts a child process (cmake, git, llama-server, llama-quantize, ssh, …):
 * explicit arguments (never a shell), the environment and working folder, cancellation through an
 * AbortSignal, optional per-line streaming, a timeout, and on failure an ExternalToolError that
 * names the command line, its exit code and the last lines it wrote to stderr.
 */

const debug = createDebugLog('invagent:process')

/** How many lines of a failed command's stderr an error carries. */
export const STDERR_TAIL_LINES = 40

/** How long a terminated child has to exit after SIGTERM before it gets SIGKILL. */
export const DEFAULT_KILL_GRACE_MS = 5_000

export type OutputStreamName = 'stdout' | 'stderr'

/** Called with every line a child writes, as it writes it (without the newline). */
export type LineListener = (line: string, stream: OutputStreamName) => void

export interface RunProcessOptions {
  /** Working folder of the child; the current one by default. */
  cwd?: string
  /** Variables added to (or, with `undefined`, removed from) the parent's environment. */
  env?: Record<string, string | undefined>
  /** Cancels the child: SIGTERM, then SIGKILL after `killGraceMs`; the promise rejects with the signal's reason. */
  signal?: AbortSignal
  /** Kills the child after this many milliseconds; the promise rejects with an ExternalToolError. */
  timeoutMs?: number
  /** Milliseconds between SIGTERM and SIGKILL when cancelling or timing out. */
  killGraceMs?: number
  /** Streams output line by line while the child runs; the full output is still returned. */
  onLine?: LineListener
  /** Written to the child's stdin; stdin is closed (ignored) otherwise. */
  input?: string
  /** Exit codes that count as success (default: only 0). */
  okExitCodes?: readonly number[]
  /** Next steps added to the error when the command fails. */
  suggestions?: string[]
  /**
   * Run the child in a process group of its own and cancel or time out the whole group. For
   * tools that fork workers (cmake → make → compilers): killing only the direct child would leave
   * its workers running. Such a child is not killed by the terminal's Ctrl+C itself, only through
   * `signal` (and when this process exits).
   */
  processGroup?: boolean
}

export interface ProcessResult {
  stdout: string
  stderr: string
  exitCode: number
  /** The command line as run, quoted for a shell (for messages and logs). */
  command: string
  durationMs: number
}

/** Quotes one argument the way a POSIX shell would need it, only when it needs it. */
export function quoteArgument(argument: string): string {
  if (argument !== '' && /^[\w@%+=:,./-]+$/.test(argument)) return argument
  return `'${argument.replaceAll("'", `'\\''`)}'`
}

/** A command line for humans: `cmake --build '/tmp/a b' -j 2`. */
export function formatCommandLine(file: string, args: readonly string[]): string {
  return [file, ...args].map(quoteArgument).join(' ')
}

/** The last `count` non-empty lines of `text`. */
export function lastLines(text: string, count = STDERR_TAIL_LINES): string {
  const lines = text.split(/\r?\n/)
  while (lines.length > 0 && lines.at(-1)!.trim() === '') lines.pop()
  return lines.slice(-count).join('\n')
}

/** Runs `file` with `args` to completion. Rejects with ExternalToolError on a failure, or with `signal.reason` when cancelled. */
export async function runProcess(
  file: string,
  args: readonly string[],
  options: RunProcessOptions = {},
): Promise<ProcessResult> {
  const command = formatCommandLine(file, args)
  const okExitCodes = options.okExitCodes ?? [0]
  options.signal?.throwIfAborted()
  debug(`run ${command}${options.cwd ? ` (cwd ${options.cwd})` : ''}`)
  const started = performance.now()
  const {onLine} = options
  const lineTap = (stream: OutputStreamName) =>
    function* (line: string) {
      onLine!(line, stream)
      yield line
    }
  const graceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS
  const group = options.processGroup ? new ProcessGroupKiller(graceMs) : undefined
  try {
    const subprocess = execa(file, args, {
      cwd: options.cwd,
      env: options.env,
      extendEnv: true,
      // In group mode cancellation and timeouts are handled below, for the whole group.
      cancelSignal: group ? undefined : options.signal,
      timeout: group ? undefined : options.timeoutMs,
      forceKillAfterDelay: graceMs,
      detached: group !== undefined,
      input: options.input,
      stdin: options.input === undefined ? 'ignore' : 'pipe',
      stdout: onLine ? lineTap('stdout') : 'pipe',
      stderr: onLine ? lineTap('stderr') : 'pipe',
      reject: false,
      stripFinalNewline: true,
      // Building llama.cpp writes many megabytes; the default 100 MB limit is plenty but say so.
      maxBuffer: 256 * 1024 * 1024,
    })
    group?.watch(subprocess.pid, options.signal, options.timeoutMs)
    const result = await subprocess
    group?.dispose()
    if (group?.timedOut) Object.assign(result, {timedOut: true, failed: true})
    const durationMs = Math.round(performance.now() - started)
    const stdout = String(result.stdout ?? '')
    const stderr = String(result.stderr ?? '')
    if ((result.isCanceled || group?.cancelled) && options.signal?.aborted) {
      debug(`cancelled ${command} after ${durationMs} ms`)
      throw options.signal.reason
    }
    if (result.failed && (result.exitCode === undefined || !okExitCodes.includes(result.exitCode))) {
      throw toolError(command, result as unknown as ExecaError, stdout, stderr, options)
    }
    debug(`exit ${result.exitCode} in ${durationMs} ms: ${command}`)
    return {stdout, stderr, exitCode: result.exitCode ?? 0, command, durationMs}
  } catch (error) {
    group?.dispose()
    if (error instanceof ExternalToolError || error === options.signal?.reason) throw error
    // execa throws (even with reject: false) for invalid options; keep the command line in the message.
    throw new ExternalToolError(`could not run ${command}: ${(error as Error).message}`, {
      command,
      cause: error,
      suggestions: options.suggestions,
    })
  }
}

function toolError(
  command: string,
  result: ExecaError,
  stdout: string,
  stderr: string,
  options: RunProcessOptions,
): ExternalToolError {
  // Some tools (make, via cmake --build) report compile errors on stdout: fall back to it.
  const stderrTail = lastLines(stderr.trim() === '' ? stdout : stderr)
  let what: string
  if (result.code === 'ENOENT') what = `${command}: command not found (${result.originalMessage ?? 'ENOENT'})`
  else if (result.timedOut) what = `${command} timed out after ${options.timeoutMs} ms and was killed`
  else if (result.signal) what = `${command} was killed by ${result.signal}`
  else if (result.exitCode !== undefined) what = `${command} exited with code ${result.exitCode}`
  else what = `${command} failed: ${result.shortMessage}`
  debug(`failed: ${what}`)
  const message = stderrTail === '' ? what : `${what}\n--- last lines of its output ---\n${stderrTail}`
  return new ExternalToolError(message, {
    command,
    exitCode: result.exitCode,
    stderrTail,
    suggestions: options.suggestions,
    cause: result,
  })
}

/** Kills a detached child's whole process group: on abort, on timeout, and if this process exits first. */
class ProcessGroupKiller {
  cancelled = false
  timedOut = false
  private pid: number | undefined
  private readonly timers: NodeJS.Timeout[] = []
  private readonly cleanups: Array<() => void> = []
  private readonly graceMs: number

  constructor(graceMs: number) {
    this.graceMs = graceMs
  }

  watch(pid: number | undefined, signal: AbortSignal | undefined, timeoutMs: number | undefined): void {
    if (pid === undefined) return
    this.pid = pid
    const onExit = () => this.send('SIGKILL')
    process.once('exit', onExit)
    this.cleanups.push(() => process.removeListener('exit', onExit))
    if (signal) {
      const onAbort = () => {
        this.cancelled = true
        this.terminate()
      }
      if (signal.aborted) onAbort()
      else {
        signal.addEventListener('abort', onAbort, {once: true})
        this.cleanups.push(() => signal.removeEventListener('abort', onAbort))
      }
    }
    if (timeoutMs !== undefined) {
      this.timers.push(
        setTimeout(() => {
          this.timedOut = true
          this.terminate()
        }, timeoutMs),
      )
    }
  }

  private terminate(): void {
    debug(`terminating process group ${this.pid}`)
    this.send('SIGTERM')
    const timer = setTimeout(() => this.send('SIGKILL'), this.graceMs)
    timer.unref()
    this.timers.push(timer)
  }

  private send(signal: NodeJS.Signals): void {
    if (this.pid === undefined) return
    try {
      process.kill(-this.pid, signal)
    } catch {
      // The group is already gone.
    }
  }

  dispose(): void {
    // A terminated leader may leave workers behind that ignored SIGTERM: finish them too.
    if (this.cancelled || this.timedOut) this.send('SIGKILL')
    for (const timer of this.timers) clearTimeout(timer)
    for (const cleanup of this.cleanups) cleanup()
    this.cleanups.length = 0
    this.pid = undefined
  }
}
