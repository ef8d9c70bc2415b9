import {randomBytes} from 'node:crypto'
import {createReadStream, statSync, type Stats} from 'node:fs'
import {open, rename, rm} from 'node:fs/promises'
import {basename, dirname, extname, join, resolve} from 'node:path'

import {ConfigError, UserError} from '../errors.js'
import {detachedCopy, Pseudonymizer, type PiiChange, type PiiKind} from './pii.js'

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
  'id',
  'tool',
  'part_id',
  'txn_id',
  'sku',
  'uom',
  'rule',
  'rootCause',
  'root_cause',
  'split',
  'source',
  'outcome',
  'status',
  'expected_status',
  'kind',
  'external_ref',
  'order_ref',
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
  const stem = ['.jsonl', '.ndjson', '.json'].includes(extension.toLowerCase())
    ? input.slice(0, -extension.length)
    : input
  return `${stem}.scrubbed.jsonl`
}

/** Scrubs a JSONL file line by line; see the file comment. */
export async function scrubFile(options: ScrubOptions): Promise<ScrubReport> {
  const input = resolve(options.input)
  const inputStats = statOrUndefined(input)
  if (!inputStats)
    throw new UserError(`${options.input}: no such file`, {
      suggestions: ['Pass the path of a JSONL file: `invagent dataset scrub datasets/playbook.jsonl`.'],
    })
  if (!inputStats.isFile())
    throw new UserError(
      `${options.input}: expected a JSONL file, found a ${inputStats.isDirectory() ? 'folder' : 'special file'}`,
      {suggestions: ['Pass the path of one JSONL file.']},
    )
  const output = resolve(
    options.inPlace ? (options.out ?? options.input) : (options.out ?? defaultScrubOutput(options.input)),
  )
  const outputStats = statOrUndefined(output)
  const sameFile = outputStats !== undefined && outputStats.ino === inputStats.ino && outputStats.dev === inputStats.dev
  if (options.inPlace && !sameFile)
    throw new UserError(`--in-place writes to the input itself, but --out names another file (${options.out})`, {
      suggestions: ['Use either --in-place or --out.'],
    })
  if (sameFile && !options.inPlace) {
    throw new UserError(`refusing to overwrite the input ${options.input} with its scrubbed copy`, {
      suggestions: ['Pass --in-place to replace the input, or --out with another path.'],
    })
  }
  if (outputStats?.isDirectory())
    throw new UserError(`--out ${options.out}: is a folder`, {suggestions: ['Pass a file path for the scrubbed copy.']})
  if (!statOrUndefined(dirname(output))?.isDirectory())
    throw new ConfigError(`cannot write ${output}: the folder ${dirname(output)} does not exist`, {
      suggestions: ['Create the folder first, or pass another --out.'],
    })

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
      if (report.unparsable.length < maxListed)
        report.unparsable.push({
          line: lineNumber,
          message: json.trim() === '' ? 'blank line' : describeJsonError(error),
        })
      return raw
    }
    const result = scrubJsonText(raw, pseudonymizer)
    if (result.changes.length === 0) return raw
    report.linesChanged++
    for (const {pointer, change} of result.changes) {
      report.counts[change.kind]++
      if (report.changes.length < maxListed)
        report.changes.push({
          line: lineNumber,
          pointer,
          kind: change.kind,
          before: detachedCopy(change.value),
          after: change.replacement,
        })
      else report.changesNotListed++
    }
    return result.text
  }

  const temporary = join(dirname(output), `.${basename(output)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`)
  let handle
  try {
    handle = await open(temporary, 'wx', inputStats.mode & 0o777)
  } catch (error) {
    throw new ConfigError(`cannot write next to ${output}: ${(error as Error).message}`, {
      cause: error,
      suggestions: ['Check the folder is writable, or pass another --out.'],
    })
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
  /** Where this container sits in its parent: a key or an index; undefined at the top. */
  token: string | undefined
  /** The key this container is the value of (inherited by arrays' elements). */
  ownerKey: string | undefined
  /** Objects: the current property's key. */
  key: string | undefined
  /** Arrays: the current index. */
  index: number
  expectingKey: boolean
}

/** Valid JSON outside strings: only these characters matter, scalars and whitespace are skipped over. */
const STRUCTURAL_CHARACTER = /[{}[\],:"]/g
const STRING_TOKEN = /"[^"\\]*(?:\\.[^"\\]*)*"/y

function isStructural(key: string | undefined, container: Container | undefined): boolean {
  if (key === undefined) return false
  if (STRUCTURAL_KEYS.has(key) || key.endsWith('_id') || key.endsWith('Id')) return true
  return key === 'name' && container?.kind === 'object' && TOOL_DECLARATION_KEYS.has(container.ownerKey ?? '')
}

/** The JSON pointer (RFC 6901) of the value the innermost container is at now. */
function pointerOf(stack: Container[]): string {
  const tokens: string[] = []
  for (const container of stack) if (container.token !== undefined) tokens.push(container.token)
  const top = stack.at(-1)
  if (top) tokens.push(top.kind === 'object' ? (top.key ?? '') : String(top.index))
  return tokens.map((token) => `/${token.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('')
}

/**
 * Pseudonymises the free-text strings of one valid JSON text (checked by the caller), rewriting
 * only the string tokens that change. Iterative, so nesting depth cannot overflow the stack.
 */
export function scrubJsonText(
  text: string,
  pseudonymizer: Pseudonymizer,
): {text: string; changes: Array<{pointer: string; change: PiiChange}>} {
  const changes: Array<{pointer: string; change: PiiChange}> = []
  const stack: Container[] = []
  let result = ''
  let copiedUpTo = 0
  STRUCTURAL_CHARACTER.lastIndex = 0
  for (let found = STRUCTURAL_CHARACTER.exec(text); found; found = STRUCTURAL_CHARACTER.exec(text)) {
    const position = found.index
    const top = stack.at(-1)
    switch (found[0]) {
      case '{':
      case '[': {
        const token = top ? (top.kind === 'object' ? top.key : String(top.index)) : undefined
        const ownerKey = top ? (top.kind === 'object' ? top.key : top.ownerKey) : undefined
        stack.push({
          kind: found[0] === '{' ? 'object' : 'array',
          token,
          ownerKey,
          key: undefined,
          index: 0,
          expectingKey: found[0] === '{',
        })
        break
      }
      case '}':
      case ']':
        stack.pop()
        break
      case ',':
        if (top?.kind === 'array') top.index++
        else if (top) top.expectingKey = true
        break
      case ':':
        if (top) top.expectingKey = false
        break
      default: {
        STRING_TOKEN.lastIndex = position
        const token = STRING_TOKEN.exec(text)![0]
        STRUCTURAL_CHARACTER.lastIndex = position + token.length
        const isKey = top?.kind === 'object' && top.expectingKey
        if (!isKey && isStructural(top ? (top.kind === 'object' ? top.key : top.ownerKey) : undefined, top)) break
        const value = token.includes('\\') ? (JSON.parse(token) as string) : token.slice(1, -1)
        if (isKey) {
          top.key = value
          break
        }
        const replaced = pseudonymizer.replace(value)
        if (replaced.changes.length === 0) break
        const pointer = pointerOf(stack)
        for (const change of replaced.changes) changes.push({pointer, change})
        result += text.slice(copiedUpTo, position) + JSON.stringify(replaced.text)
        copiedUpTo = position + token.length
      }
    }
  }
  return {text: copiedUpTo === 0 ? text : result + text.slice(copiedUpTo), changes}
}
