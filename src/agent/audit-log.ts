import {closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync} from 'node:fs'
import {join} from 'node:path'

import {ConfigError} from '../errors.js'
import {canonicalJson, sha256Hex} from '../util/canonical-json.js'
import {redactedCanonicalJson} from '../util/redact.js'
import {secretValues} from '../util/secrets.js'

/*
 * The audit log: one JSONL file per run under the logs folder, one line per event, each line
 * carrying the hash of the previous one (a hash chain). Removing, reordering or editing a line
 * breaks the chain, and `invagent log verify` says where. PII (emails, phone numbers, names)
 * and the environment's secrets are redacted before anything is written.
 */

export const GENESIS_HASH = '0'.repeat(64)

/** Appended lines are written at the latest when they hold this much text, or when the oldest is this old. */
const FLUSH_AT_CHARACTERS = 256 * 1024
const FLUSH_AFTER_MS = 200

export type AuditEventType =
  | 'run-started'
  | 'finding-detected'
  | 'step-proposed'
  | 'step-invalid'
  | 'tool-called'
  | 'policy-decided'
  | 'approval-answered'
  | 'validation-ran'
  | 'plan-made'
  | 'plan-applied'
  | 'plan-parked'
  | 'approval-decided'
  | 'escalation-queued'
  | 'escalation-closed'
  | 'finding-deferred'
  | 'outcome-recorded'
  | 'run-finished'

export interface AuditLine {
  seq: number
  at: string
  run: string
  event: AuditEventType
  data: unknown
  prev: string
  hash: string
}

export function hashLine(line: Omit<AuditLine, 'hash'>): string {
  return sha256Hex(canonicalJson(line))
}

export class AuditLog {
  readonly file: string
  private readonly fd: number
  private seq = 0
  private prev = GENESIS_HASH
  private readonly runId: string
  /** The environment's secrets, read once: a log line must never hold one (a model may echo a key it saw). */
  private readonly secrets = secretValues()
  private pending: string[] = []
  private pendingLength = 0
  private timer: NodeJS.Timeout | undefined
  /** Bytes a failed flush did not write: they go first next time. */
  private unwritten: Buffer | undefined

  private constructor(file: string, runId: string) {
    this.file = file
    this.runId = runId
    this.fd = openSync(file, 'a')
  }

  static create(directory: string, runId: string): AuditLog {
    try {
      mkdirSync(directory, {recursive: true})
    } catch (error) {
      throw new ConfigError(`cannot create the log folder ${directory}: ${(error as Error).message}`, {
        code: 'LOG_DIR',
        cause: error,
      })
    }
    const stamp = new Date()
      .toISOString()
      .replaceAll(':', '')
      .replace(/\.\d+Z$/, 'Z')
    return new AuditLog(join(directory, `audit-${stamp}-${runId}.jsonl`), runId)
  }

  /**
   * Adds one line. Lines are kept in memory until `flush` (the audit calls it before every apply
   * unit, before every decision it records in the state store, before it asks a person, and after
   * every finding), until enough have gathered, or at the latest FLUSH_AFTER_MS after the first of
   * them (a timer): a fast run writes a finding's lines together, a slow one (a model thinking)
   * does not keep a line in memory for longer than that. `close` writes the rest.
   */
  append(event: AuditEventType, data: unknown): void {
    // The line's canonical form (keys sorted: at, data, event, prev, run, seq) is what is hashed;
    // it is built as text around the redacted data, which is serialized once.
    const seq = ++this.seq
    const at = JSON.stringify(new Date().toISOString())
    const run = JSON.stringify(this.runId)
    const name = JSON.stringify(event)
    const body = redactedCanonicalJson(data, this.secrets)
    const prev = JSON.stringify(this.prev)
    const hash = sha256Hex(`{"at":${at},"data":${body},"event":${name},"prev":${prev},"run":${run},"seq":${seq}}`)
    this.pending.push(
      `{"seq":${seq},"at":${at},"run":${run},"event":${name},"data":${body},"prev":${prev},"hash":"${hash}"}\n`,
    )
    this.pendingLength += body.length
    this.prev = hash
    if (this.pendingLength >= FLUSH_AT_CHARACTERS) this.flush()
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        try {
          this.flush()
        } catch {
          // What was not written stays pending; the next flush (at the latest, close) tries again and throws.
        }
      }, FLUSH_AFTER_MS)
      this.timer.unref()
    }
  }

  /**
   * Writes the lines appended since the last flush. When the write fails (a full disk), what was not
   * written stays pending, so a later flush writes it in order and the chain stays whole.
   */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    if (this.unwritten === undefined && this.pending.length === 0) return
    const bytes = Buffer.concat([this.unwritten ?? Buffer.alloc(0), Buffer.from(this.pending.join(''))])
    this.pending = []
    this.pendingLength = 0
    let offset = 0
    try {
      while (offset < bytes.length) offset += writeSync(this.fd, bytes, offset)
      this.unwritten = undefined
    } catch (error) {
      this.unwritten = bytes.subarray(offset)
      throw error
    }
  }

  /** Writes what is pending and closes the file; the file is closed even when the write fails. */
  close(): void {
    try {
      this.flush()
    } finally {
      closeSync(this.fd)
    }
  }
}

export interface VerifyResult {
  file: string
  ok: boolean
  lines: number
  /** The first broken or missing line, 1-based, and what is wrong with it. */
  problem?: {line: number; message: string}
}

/** Checks one log file's hash chain, sequence numbers and completeness. */
export function verifyLogFile(file: string): VerifyResult {
  if (!existsSync(file)) throw new ConfigError(`log file not found: ${file}`, {code: 'LOG_NOT_FOUND'})
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'EISDIR'
        ? 'it is a folder, expected one audit log (.jsonl)'
        : (error as Error).message
    throw new ConfigError(`cannot read the log ${file}: ${reason}`, {
      code: 'LOG_UNREADABLE',
      cause: error,
      suggestions: ['Pass one log file, or a logs folder to verify every log in it.'],
    })
  }
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  let prev = GENESIS_HASH
  let last: AuditLine | undefined
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1
    const fail = (message: string): VerifyResult => ({
      file,
      ok: false,
      lines: lines.length,
      problem: {line: lineNumber, message},
    })
    let line: AuditLine
    try {
      line = JSON.parse(lines[index]) as AuditLine
    } catch {
      return fail('not valid JSON (edited or truncated)')
    }
    if (line.seq !== lineNumber)
      return fail(
        `sequence number ${line.seq} where ${lineNumber} was expected: line ${lineNumber} is missing or out of order`,
      )
    if (line.prev !== prev)
      return fail('its "prev" does not match the hash of the line before: a line before it was removed or changed')
    const {hash, ...body} = line
    if (hashLine(body) !== hash) return fail('its content does not match its hash: the line was edited')
    prev = hash
    last = line
  }
  if (!last) return {file, ok: false, lines: 0, problem: {line: 1, message: 'the log is empty'}}
  if (last.event !== 'run-finished')
    return {
      file,
      ok: false,
      lines: lines.length,
      problem: {
        line: lines.length + 1,
        message: 'the log ends without "run-finished": lines at the end are missing, or the run was interrupted',
      },
    }
  return {file, ok: true, lines: lines.length}
}

/** Every log file in a folder, oldest first. */
export function listLogFiles(directory: string): string[] {
  if (!existsSync(directory)) return []
  return readdirSync(directory)
    .filter((name) => name.endsWith('.jsonl'))
    .sort()
    .map((name) => join(directory, name))
}
