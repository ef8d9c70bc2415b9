import {z} from 'zod'

import {ExternalToolError} from '../errors.js'
import {quoteArgument} from '../process/run-process.js'
import type {JobTransport} from './transport.js'

/*
 * Starting, watching and stopping run.sh where the job lives, with small bash scripts sent
 * through the transport. run.sh holds state/run.lock (flock) for as long as it or anything it
 * started runs, so "is it running" never trusts a pid that may have been reused.
 */

/** Every progress line run.sh, train.py and verify_gguf.py write starts with this. */
export const EVENT_PREFIX = '@@invagent '

/** One progress event from the host. */
export interface JobEvent {
  event: string
  [key: string]: unknown
}

export function parseEventLine(line: string): JobEvent | undefined {
  if (!line.startsWith(EVENT_PREFIX)) return undefined
  try {
    const value = JSON.parse(line.slice(EVENT_PREFIX.length)) as unknown
    return value !== null && typeof value === 'object' && typeof (value as JobEvent).event === 'string'
      ? (value as JobEvent)
      : undefined
  } catch {
    return undefined
  }
}

export const RemoteStateSchema = z.union([
  z.object({exists: z.literal(false)}),
  z.object({
    exists: z.literal(true),
    bundle: z.boolean(),
    running: z.boolean(),
    done: z.array(z.string()),
    status: z
      .object({
        status: z.enum(['complete', 'failed', 'cancelled']),
        stage: z.string(),
        exitCode: z.number(),
        finishedAt: z.string().optional(),
      })
      .nullable(),
    logLines: z.number().int(),
  }),
])

export type RemoteState = z.output<typeof RemoteStateSchema>

const isRunning = `[ -f state/run.lock ] && ! flock -n state/run.lock true 2>/dev/null`

/** What the job's folder on the host says: bundle unpacked, running, stages done, how the last run ended. */
export async function queryRemoteState(
  transport: JobTransport,
  dir: string,
  signal?: AbortSignal,
): Promise<RemoteState> {
  const script = [
    `cd ${quoteArgument(dir)} 2>/dev/null || { echo '{"exists":false}'; exit 0; }`,
    `running=false; if ${isRunning}; then running=true; fi`,
    `done=$(ls -1 state 2>/dev/null | sed -n 's/\\.done$//p' | awk '{ printf "%s\\"%s\\"", (NR > 1 ? "," : ""), $0 }')`,
    `status=$(cat state/status.json 2>/dev/null || echo null)`,
    `lines=$(cat run.log 2>/dev/null | wc -l)`,
    `bundle=false; [ -f SHA256SUMS ] && bundle=true`,
    `printf '{"exists":true,"bundle":%s,"running":%s,"done":[%s],"status":%s,"logLines":%s}\\n' "$bundle" "$running" "$done" "$status" "$lines"`,
  ].join('\n')
  const result = await transport.exec(script, {signal, timeoutMs: 60_000})
  const line = result.stdout.trim().split('\n').at(-1) ?? ''
  try {
    return RemoteStateSchema.parse(JSON.parse(line))
  } catch (error) {
    throw new ExternalToolError(
      `cannot read the job's state on ${transport.description}: unexpected answer ${JSON.stringify(line.slice(0, 200))}`,
      {command: result.command, cause: error},
    )
  }
}

/**
 * Checks the uploaded tarball's sha256 and, when it matches, unpacks it (keeping state/ and out/
 * of an earlier run) and checks every file against SHA256SUMS. Returns the sha256 found, so a
 * mismatch can be retried.
 */
export async function unpackRemoteBundle(
  transport: JobTransport,
  dir: string,
  tarball: string,
  expectedSha256: string,
  signal?: AbortSignal,
): Promise<{ok: boolean; sha256: string}> {
  const script = [
    'set -e',
    `cd ${quoteArgument(dir)}`,
    `found=$(sha256sum ${quoteArgument(tarball)} | cut -d ' ' -f 1)`,
    'echo "$found"',
    `[ "$found" = ${quoteArgument(expectedSha256)} ] || exit 0`,
    `tar -xzf ${quoteArgument(tarball)}`,
    'sha256sum --check --quiet --strict SHA256SUMS',
    'echo unpacked',
  ].join('\n')
  const lines = (await transport.exec(script, {signal, timeoutMs: 10 * 60_000})).stdout.trim().split('\n')
  return {ok: lines.at(-1) === 'unpacked', sha256: lines[0] ?? ''}
}

/** Starts run.sh detached from the connection (setsid, nohup), unless it is already running. */
export async function startRemoteRun(
  transport: JobTransport,
  dir: string,
  signal?: AbortSignal,
): Promise<'started' | 'already-running'> {
  const script = [
    `cd ${quoteArgument(dir)} || exit 1`,
    `if ${isRunning}; then echo already-running; exit 0; fi`,
    'mkdir -p state && rm -f state/run.pid',
    'setsid nohup bash run.sh >>run.log 2>&1 </dev/null &',
    'for attempt in $(seq 1 100); do [ -s state/run.pid ] && break; sleep 0.1; done',
    'if [ -s state/run.pid ]; then echo started; else echo "run.sh did not start:" >&2; tail -n 20 run.log >&2; exit 1; fi',
  ].join('\n')
  const result = await transport.exec(script, {signal, timeoutMs: 60_000})
  return result.stdout.trim().endsWith('already-running') ? 'already-running' : 'started'
}

/**
 * Streams run.log from line `fromLine` (1-based) until run.sh has ended, then returns. Only whole
 * lines are sent; the last ones are read after the job ended, so none is lost. Rejects when the
 * connection drops (the job goes on).
 */
export async function followRemoteLog(
  transport: JobTransport,
  dir: string,
  fromLine: number,
  onLine: (line: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const script = [
    `cd ${quoteArgument(dir)} || exit 1`,
    `seen=${Math.max(0, fromLine - 1)}`,
    'while :; do',
    `  alive=no; if ${isRunning}; then alive=yes; fi`,
    '  total=$(cat run.log 2>/dev/null | wc -l)',
    '  if [ "$total" -gt "$seen" ]; then sed -n "$((seen + 1)),${total}p" run.log; seen=$total; fi',
    '  [ "$alive" = no ] && break',
    '  sleep 1',
    'done',
  ].join('\n')
  await transport.exec(script, {signal, onLine: (line, stream) => stream === 'stdout' && onLine(line)})
}

/** Stops run.sh and everything it started (its process group): TERM, then KILL after `graceSeconds`. */
export async function cancelRemoteRun(
  transport: JobTransport,
  dir: string,
  options: {graceSeconds?: number; signal?: AbortSignal} = {},
): Promise<'cancelled' | 'killed' | 'not-running'> {
  const grace = options.graceSeconds ?? 20
  const script = [
    `cd ${quoteArgument(dir)} 2>/dev/null || { echo not-running; exit 0; }`,
    `if ! { ${isRunning}; }; then echo not-running; exit 0; fi`,
    'pid=$(cat state/run.pid)',
    'kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null',
    `for attempt in $(seq 1 ${grace * 2}); do if ! { ${isRunning}; }; then echo cancelled; exit 0; fi; sleep 0.5; done`,
    'kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null',
    'sleep 1',
    `[ -f state/status.json ] || printf '{"status":"cancelled","stage":"unknown","exitCode":137,"finishedAt":"%s"}\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >state/status.json`,
    'echo killed',
  ].join('\n')
  const result = await transport.exec(script, {signal: options.signal, timeoutMs: (grace + 30) * 1000})
  const answer = result.stdout.trim().split('\n').at(-1)
  return answer === 'cancelled' || answer === 'killed' ? answer : 'not-running'
}

/** The last `count` lines of the job's run.log on the host. */
export async function remoteLogTail(
  transport: JobTransport,
  dir: string,
  count: number,
  signal?: AbortSignal,
): Promise<string[]> {
  const result = await transport.exec(`tail -n ${count} ${quoteArgument(`${dir}/run.log`)} 2>/dev/null || true`, {
    signal,
    timeoutMs: 60_000,
  })
  return result.stdout === '' ? [] : result.stdout.split('\n')
}

/** A small text file of the job (metrics.json, the checksum), or undefined when it is not there. */
export async function readRemoteFile(
  transport: JobTransport,
  path: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const result = await transport.exec(
    `if [ -f ${quoteArgument(path)} ]; then echo present; cat ${quoteArgument(path)}; else echo absent; fi`,
    {signal, timeoutMs: 60_000},
  )
  const [first, ...rest] = result.stdout.split('\n')
  return first === 'present' ? rest.join('\n') : undefined
}
