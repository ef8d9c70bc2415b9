import {randomBytes} from 'node:crypto'
import {createReadStream, statSync, type Stats} from 'node:fs'
import {open, rename, rm} from 'node:fs/promises'
import {basename, dirname, extname, join, resolve} from 'node:path'

import {ConfigError, UserError} from '../errors.js'
import {Pseudonymizer, type PiiChange, type PiiKind} from './pii.js'

/*
 * `dataset scrub`: replaces PII in the free text of a JSONL file with consistent pseudonyms. Only
 * the string values that changed are rewritten, in place within their line: key order, spacing,
 * numbers and every other byte of the line stay as they were, and lines without PII (or that are
 * not JSON) are copied unchanged. The file is streamed, so memory stays flat at any size, and the
 * result is written to a temporary file renamed into place only when complete.
 */

/**
 * Keys whose string values are identifiers or enumerations, never free text: they are not
 * scrubbed (a part id or a root cause must survive scrubbing untouched). Any key ending in `_id`
 * or `Id` counts as well, and `name` inside a tool declaration (`tools[].name`,
 * `tools[].function.name`). Object keys themselves are never changed.
 */
export const STRUCTURAL_KEYS: ReadonlySet<string> = new Set([
  'id', 'tool', 'part_id', 'txn_id', 'sku', 'uom', 'rule', 'rootCause', 'root_cause', 'split', 'source',
  'outcome', 'status', 'expected_status', 'kind', 'external_ref', 'order_ref',
])

const TOOL_DECLARATION_KEYS = new Set(['tools', 'function'])

export interface ScrubProgress {
  bytesRead: number
  totalBytes: number
  lines: number
}

export interface ScrubOptions {
  input: string
  /** Defaults to the input with `.scrubbed.jsonl` in place of its extension. */
  out?: string
  /** Replace the input itself (atomically). */
  inPlace?: boolean
  /** The pseudonym key; the same key gives the same pseudonyms in every file and run. */
  key?: string
  /** Changes and unparsable lines listed in the report (all are counted); keeps memory flat on huge files. */
  maxListed?: number
  signal?: AbortSignal
  /** Called after each chunk read (about every MiB). */
  onProgress?: (progress: ScrubProgress) => void
}

export interface ScrubChange {
  /** 1-based line number. */
  line: number
  /** JSON pointer (RFC 6901) of the string that changed. */
  pointer: string
  kind: PiiKind
  before: string
  after: string
}

export interface ScrubReport {
  input: string
  output: string
  inPlace: boolean
  lines: number
  linesChanged: number
  counts: Record<PiiKind, number>
  /** The first `maxListed` changes, in file order. */
  changes: ScrubChange[]
  changesNotListed: number
  unparsableLines: number
  /** Lines left exactly as they were because they are not JSON (the first `maxListed`). */
  unparsable: Array<{line: number; message: string}>
}

export const DEFAULT_MAX_LISTED = 10_000
const CHUNK_BYTES = 1024 * 1024

/** `data.jsonl` → `data.scrubbed.jsonl`; other names get `.scrubbed.jsonl` appended. */
export function defaultScrubOutput(input: string): string {
  const extension = extname(input)
  const stem = ['.jsonl', '.ndjson', '.json'].includes(extension.toLowerCase()) ? input.slice(0, -extension.length) : input
  return `${stem}.scrubbed.jsonl`
}

/** Scrubs a JSONL file line by line; see the file comment. */
export async function scrubFile(options: ScrubOptions): Promise<ScrubReport> {
  const input = resolve(options.input)
  const inputStats = statOrUndefined(input)
  if (!inputStats) throw new UserError(`${options.input}: no such file`, {suggestions: ['Pass the path of a JSONL file: `invagent dataset scrub datasets/playbook.jsonl`.']})
  if (!inputStats.isFile()) throw new UserError(`${options.input}: expected a JSONL file, found a ${inputStats.isDirectory() ? 'folder' : 'special file'}`, {suggestions: ['Pass the path of one JSONL file.']})
  const output = resolve(options.inPlace ? (options.out ?? options.input) : (options.out ?? defaultScrubOutput(options.input)))
  const outputStats = statOrUndefined(output)
  const sameFile = outputStats !== undefined && outputStats.ino === inputStats.ino && outputStats.dev === inputStats.dev
  if (options.inPlace && !sameFile) throw new UserError(`--in-place writes to the input itself, but --out names another file (${options.out})`, {suggestions: ['Use either --in-place or --out.']})
  if (sameFile && !options.inPlace) {
    throw new UserError(`refusing to overwrite the input ${options.input} with its scrubbed copy`, {suggestions: ['Pass --in-place to replace the input, or --out with another path.']})
  }
  if (outputStats?.isDirectory()) throw new UserError(`--out ${options.out}: is a folder`, {suggestions: ['Pass a file path for the scrubbed copy.']})
  if (!statOrUndefined(dirname(output))?.isDirectory()) throw new ConfigError(`cannot write ${output}: the folder ${dirname(output)} does not exist`, {suggestions: ['Create the folder first, or pass another --out.']})

  const maxListed = options.maxListed ?? DEFAULT_MAX_LISTED
  const pseudonymizer = new Pseudonymizer({key: options.key})
  const report: ScrubReport = {
    input,
    output,
    inPlace: options.inPlace ?? false,
    lines: 0,
    linesChanged: 0,
    counts: {email: 0, phone: 0, name: 0},
    changes: [],
    changesNotListed: 0,
    unparsableLines: 0,
    unparsable: [],
  }

  const scrubOne = (raw: string): string => {
    const lineNumber = ++report.lines
    const json = report.lines === 1 && raw.startsWith('\uFEFF') ? raw.slice(1) : raw
    try {
      JSON.parse(json)
    } catch (error) {
      report.unparsableLines++
      if (report.unparsable.length < maxListed) report.unparsable.push({line: lineNumber, message: json.trim() === '' ? 'blank line' : describeJsonError(error)})
      return raw
    }
    const result = scrubJsonText(raw, pseudonymizer)
    if (result.changes.length === 0) return raw
    report.linesChanged++
    for (const {pointer, change} of result.changes) {
      report.counts[change.kind]++
      if (report.changes.length < maxListed) report.changes.push({line: lineNumber, pointer, kind: change.kind, before: change.value, after: change.replacement})
      else report.changesNotListed++
    }
    return result.text
  }

  const temporary = join(dirname(output), `.${basename(output)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`)
  let handle
  try {
    handle = await open(temporary, 'wx', inputStats.mode & 0o777)
  } catch (error) {
    throw new ConfigError(`cannot write next to ${output}: ${(error as Error).message}`, {cause: error, suggestions: ['Check the folder is writable, or pass another --out.']})
  }
  try {
    const stream = createReadStream(input, {encoding: 'utf8', highWaterMark: CHUNK_BYTES, signal: options.signal})
    let pending = ''
    for await (const chunk of stream as AsyncIterable<string>) {
      pending += chunk
      const parts: string[] = []
      let from = 0
      for (let newline = pending.indexOf('\n'); newline !== -1; newline = pending.indexOf('\n', from)) {
        parts.push(scrubOne(pending.slice(from, newline)), '\n')
        from = newline + 1
      }
      pending = pending.slice(from)
      if (parts.length > 0) await handle.write(parts.join(''))
      options.onProgress?.({bytesRead: stream.bytesRead, totalBytes: inputStats.size, lines: report.lines})
    }
    // The last line, when the file does not end with a newline (and it is written without one).
    if (pending.length > 0) await handle.write(scrubOne(pending))
    options.signal?.throwIfAborted()
    await handle.sync()
    await handle.close()
    handle = undefined
    await rename(temporary, output)
  } catch (error) {
    await handle?.close().catch(() => undefined)
    await rm(temporary, {force: true})
    if (options.signal?.aborted) throw options.signal.reason
    throw error
  }
  return report
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

/** V8's message without the excerpt of the line it quotes: the excerpt may be PII. */
function describeJsonError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  const reason = message
    .replace(/,\s*(?:\.\.\.)?"[\s\S]*"(?:\.\.\.)? is not valid JSON$/, '')
    .replace(/ in JSON at position \d+ \(line \d+ column (\d+)\)$/, ' at column $1')
    .replace(/ in JSON at position (\d+)$/, (_all, position: string) => ` at column ${Number(position) + 1}`)
  return `not JSON: ${reason}`
}

// ---------------------------------------------------------------------------------------------
// Rewriting the strings of one JSON text in place

interface Container {
  kind: 'object' | 'array'
  pointer: string
  /** The key this container is the value of (inherited by arrays' elements). */
  ownerKey: string | undefined
  /** Objects: the current property's key; arrays: the current index. */
  key: string | undefined
  index: number
  expectingKey: boolean
}

const STRING_TOKEN = /"[^"\\]*(?:\\.[^"\\]*)*"/y
const SCALAR_TOKEN = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y

function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1')
}

function isStructural(key: string | undefined, container: Container | undefined): boolean {
  if (key === undefined) return false
  if (STRUCTURAL_KEYS.has(key) || /(?:_id|Id)$/.test(key)) return true
  return key === 'name' && container?.kind === 'object' && TOOL_DECLARATION_KEYS.has(container.ownerKey ?? '')
}

/**
 * Pseudonymises the free-text strings of one valid JSON text (checked by the caller), rewriting
 * only the string tokens that change. Iterative, so nesting depth cannot overflow the stack.
 */
export function scrubJsonText(text: string, pseudonymizer: Pseudonymizer): {text: string; changes: Array<{pointer: string; change: PiiChange}>} {
  const changes: Array<{pointer: string; change: PiiChange}> = []
  const stack: Container[] = []
  let result = ''
  let copiedUpTo = 0
  let position = 0
  const childPointer = (top: Container | undefined) => (top ? `${top.pointer}/${escapePointerToken(top.kind === 'object' ? (top.key ?? '') : String(top.index))}` : '')
  const childKey = (top: Container | undefined) => (top ? (top.kind === 'object' ? top.key : top.ownerKey) : undefined)

  while (position < text.length) {
    const char = text[position]
    const top = stack.at(-1)
    switch (char) {
      case '{':
      case '[':
        stack.push({kind: char === '{' ? 'object' : 'array', pointer: childPointer(top), ownerKey: childKey(top), key: undefined, index: 0, expectingKey: char === '{'})
        position++
        break
      case '}':
      case ']':
        stack.pop()
        position++
        break
      case ',':
        if (top?.kind === 'array') top.index++
        else if (top) top.expectingKey = true
        position++
        break
      case ':':
        if (top) top.expectingKey = false
        position++
        break
      case '"': {
        STRING_TOKEN.lastIndex = position
        const token = STRING_TOKEN.exec(text)![0]
        const value = token.includes('\\') ? (JSON.parse(token) as string) : token.slice(1, -1)
        if (top?.kind === 'object' && top.expectingKey) {
          top.key = value
        } else if (!isStructural(childKey(top), top)) {
          const replaced = pseudonymizer.replace(value)
          if (replaced.changes.length > 0) {
            const pointer = childPointer(top)
            for (const change of replaced.changes) changes.push({pointer, change})
            result += text.slice(copiedUpTo, position) + JSON.stringify(replaced.text)
            copiedUpTo = position + token.length
          }
        }
        position += token.length
        break
      }
      default:
        if (char === ' ' || char === '\t' || char === '\n' || char === '\r' || char === '\uFEFF') {
          position++
        } else {
          SCALAR_TOKEN.lastIndex = position
          const scalar = SCALAR_TOKEN.exec(text)
          if (!scalar) throw new Error(`not a JSON text: unexpected ${JSON.stringify(char)} at column ${position + 1}`)
          position += scalar[0].length
        }
    }
  }
  return {text: copiedUpTo === 0 ? text : result + text.slice(copiedUpTo), changes}
}
