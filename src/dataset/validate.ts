import {createReadStream, createWriteStream, existsSync, renameSync, rmSync, statSync} from 'node:fs'
import {basename, resolve} from 'node:path'
import {createInterface} from 'node:readline'
import {once} from 'node:events'
import {Worker} from 'node:worker_threads'

import {UserError} from '../errors.js'
import {checkExample, type ExampleFacts, type ProblemCode} from './check.js'
import {toPlaybook} from './convert.js'
import {FingerprintTable} from './fingerprint-table.js'
import {findSyntaxProblem, locatePointer} from './json-text.js'
import {scanLine, type LineScanInput, type LineScanResult} from './line-scan.js'
import {detectFormat, type DatasetFormat} from './schema.js'
import type {TokenCounter} from './token-count.js'

/*
 * `dataset validate`: streams any number of JSONL files line by line (memory stays flat: only
 * 16-byte fingerprints of ids and contents are kept), reports every problem as
 * `file:line:col: message`, and summarises what the clean examples cover. With `fix`, writes a
 * cleaned copy — comments, blank lines, duplicates and broken lines dropped, trailing commas
 * repaired, foreign formats converted — atomically, and lists what it dropped.
 */

export type FormatOption = 'auto' | DatasetFormat

export interface DatasetProblem {
  file: string
  line: number
  column: number
  code: ProblemCode
  message: string
  pointer?: string
}

export interface DatasetSummary {
  examples: number
  byFormat: Record<string, number>
  byRule: Record<string, number>
  byRootCause: Record<string, number>
  byTool: Record<string, number>
  byOutcome: Record<string, number>
  /** Number of steps → examples with that many. */
  steps: Record<string, number>
}

export interface DatasetValidationReport {
  ok: boolean
  files: Array<{file: string; lines: number; examples: number; problems: number}>
  /** Every example line read (blank and comment lines not counted). */
  examples: number
  /** Examples without any problem. */
  cleanExamples: number
  problems: DatasetProblem[]
  /** Problems not listed in `problems` because of the limit; all are counted in `problemCounts`. */
  problemsOmitted: number
  problemCounts: Partial<Record<ProblemCode, number>>
  summary: DatasetSummary
  tokens?: {model: string; maxTokens: number; longest: number; over: number}
  fix?: {
    out: string
    written: number
    dropped: Array<{file: string; line: number; reason: string}>
    repaired: Array<{file: string; line: number; what: string}>
    converted: number
  }
}

export interface ValidateOptions {
  format?: FormatOption
  /** Held-out files: any example of FILES that also appears in one of them is leakage. */
  evalFiles?: string[]
  /**
   * Training files, when FILES are held out (question files): any example of FILES whose instruction
   * one of them holds is leakage.
   */
  trainFiles?: string[]
  tokenCounter?: TokenCounter
  maxTokens?: number
  fix?: string
  /** Problems kept in the report (all are counted). Default 10,000. */
  problemLimit?: number
  onProblem?: (problem: DatasetProblem) => void
  onProgress?: (file: string, bytesRead: number, bytesTotal: number) => void
  /** Scan lines on a worker thread; by default only for inputs of 4 MiB or more. */
  worker?: boolean
}

function emptySummary(): DatasetSummary {
  return {examples: 0, byFormat: {}, byRule: {}, byRootCause: {}, byTool: {}, byOutcome: {}, steps: {}}
}

function count(table: Record<string, number>, key: string | undefined, by = 1): void {
  if (key === undefined) return
  table[key] = (table[key] ?? 0) + by
}

function normalizeText(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim()
}

/**
 * What makes two examples "the same task" across train and eval: the finding (rule, entity,
 * evidence) for the playbook, the normalised instruction or query text for the other formats.
 */
export function leakageKeys(value: unknown): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return []
  const example = value as Record<string, unknown>
  const keys: string[] = []
  const finding = (example.input as Record<string, unknown> | undefined)?.finding as Record<string, unknown> | undefined
  if (finding && typeof finding === 'object') {
    keys.push(`finding:${JSON.stringify([finding.rule, finding.entity])}`)
    return keys
  }
  for (const field of ['instruction', 'query', 'prompt', 'question']) {
    const text = example[field]
    if (typeof text === 'string' && text.trim() !== '') {
      const input = typeof example.input === 'string' ? ` ${example.input}` : ''
      keys.push(`text:${normalizeText(text + input)}`)
      // A question with its context is also the instruction-format example {instruction: query, input: context}.
      if (typeof example.context === 'string') keys.push(`text:${normalizeText(`${text} ${example.context}`)}`)
      break
    }
  }
  return keys
}

/** Lines of a file with their 1-based numbers; CRLF handled, a final newline optional. */
async function* readLines(file: string): AsyncGenerator<[number, string]> {
  const stream = createReadStream(file, {encoding: 'utf8', highWaterMark: 1 << 20})
  const lines = createInterface({input: stream, crlfDelay: Infinity})
  let number = 0
  for await (const line of lines) yield [++number, line]
}

/** Builds the leakage index from the held-out files (any format, read leniently). */
async function leakageIndex(files: readonly string[]): Promise<Map<string, string>> {
  const index = new Map<string, string>()
  for (const file of files) {
    for await (const [number, line] of readLines(file)) {
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch {
        value = repairLine(line)?.value
      }
      for (const key of leakageKeys(value)) if (!index.has(key)) index.set(key, `${basename(file)}:${number}`)
    }
  }
  return index
}

function checkInputs(files: readonly string[], label: string): void {
  for (const file of files) {
    if (!existsSync(file))
      throw new UserError(`${label} ${file} does not exist`, {
        suggestions: ['Check the path; datasets ship in datasets/ (playbook.jsonl, eval.jsonl).'],
      })
    if (statSync(file).isDirectory()) throw new UserError(`${label} ${file} is a directory, expected a JSONL file`)
  }
}

interface PendingProblem {
  code: ProblemCode
  column: number
  message: string
  pointer?: string
}

/** What the main thread learned about one line; finished once its scan (maybe on another thread) is back. */
interface LineRecord {
  fileIndex: number
  number: number
  early: PendingProblem[]
  late: PendingProblem[]
  last: PendingProblem[]
  /** Why --fix leaves the line out, when that is known before the scan. */
  drop?: string
  scan?: LineScanInput
  format?: DatasetFormat
  facts?: ExampleFacts
  value?: unknown
  /** Problems reported but not held against the line (a syntax error --fix repaired). */
  forgiven?: number
}

/** Lines per batch handed to the scanner, and the input size from which a worker thread pays off. */
const BATCH_LINES = 512
const WORKER_FROM_BYTES = 4 * 2 ** 20

/** Runs line scans inline, or on a worker thread for large inputs; results come back in order. */
class LineScanner {
  private readonly worker?: Worker
  private readonly waiting = new Map<number, (results: LineScanResult[]) => void>()
  private next = 0
  private failure?: Error

  constructor(useWorker: boolean) {
    if (!useWorker) return
    this.worker = new Worker(new URL('./line-scan-worker.js', import.meta.url))
    this.worker.on('message', ({batch, results}: {batch: number; results: LineScanResult[]}) => {
      this.waiting.get(batch)?.(results)
      this.waiting.delete(batch)
    })
    this.worker.on('error', (error) => {
      this.failure = error
      for (const resolve of this.waiting.values()) resolve([])
    })
  }

  async scan(lines: LineScanInput[]): Promise<LineScanResult[]> {
    if (!this.worker) return lines.map(scanLine)
    const batch = this.next++
    const results = await new Promise<LineScanResult[]>((resolve) => {
      this.waiting.set(batch, resolve)
      const skips = new Int32Array(lines.length * 2)
      lines.forEach((line, index) => {
        skips[2 * index] = line.skipFrom
        skips[2 * index + 1] = line.skipTo
      })
      this.worker!.postMessage(
        {batch, text: lines.map((line) => line.text).join('\n'), skips, ids: lines.map((line) => line.id ?? null)},
        [skips.buffer],
      )
    })
    if (this.failure) throw this.failure
    return results
  }

  async close(): Promise<void> {
    await this.worker?.terminate()
  }
}

/** Validates JSONL dataset files; see the file comment. */
export async function validateDatasetFiles(
  files: string[],
  options: ValidateOptions = {},
): Promise<DatasetValidationReport> {
  if (files.length === 0)
    throw new UserError('no dataset file given', {suggestions: ['invagent dataset validate datasets/playbook.jsonl']})
  checkInputs(files, 'dataset file')
  checkInputs(options.evalFiles ?? [], '--eval file')
  checkInputs(options.trainFiles ?? [], '--train file')
  const limit = options.problemLimit ?? 10_000
  const report: DatasetValidationReport = {
    ok: true,
    files: [],
    examples: 0,
    cleanExamples: 0,
    problems: [],
    problemsOmitted: 0,
    problemCounts: {},
    summary: emptySummary(),
  }
  const leaks = options.evalFiles && options.evalFiles.length > 0 ? await leakageIndex(options.evalFiles) : undefined
  const trainFiles = options.trainFiles ?? []
  const trained = trainFiles.length > 0 ? await leakageIndex(trainFiles) : undefined
  const evalPaths = new Set((options.evalFiles ?? []).map((file) => resolve(file)))
  const ids = new FingerprintTable()
  const contents = new FingerprintTable()
  const fixOut = options.fix ? resolve(options.fix) : undefined
  if (fixOut && files.some((file) => resolve(file) === fixOut))
    throw new UserError(`--fix ${options.fix} is one of the files being validated; write the cleaned copy elsewhere`)
  const temporary = fixOut ? `${fixOut}.tmp-${process.pid}` : undefined
  const writer = temporary ? createWriteStream(temporary, {encoding: 'utf8'}) : undefined
  if (fixOut) report.fix = {out: fixOut, written: 0, dropped: [], repaired: [], converted: 0}
  const write = async (text: string) => {
    if (!writer!.write(text + '\n')) await once(writer!, 'drain')
  }
  if (options.tokenCounter)
    report.tokens = {model: options.tokenCounter.model, maxTokens: options.maxTokens ?? 0, longest: 0, over: 0}
  const totalBytes = files.reduce((sum, file) => sum + statSync(file).size, 0)
  const scanner = new LineScanner(options.worker ?? totalBytes >= WORKER_FROM_BYTES)

  /** Reports a line's problems in a fixed order, then counts it and writes it under --fix. */
  const finish = async (record: LineRecord, scanned: LineScanResult | undefined) => {
    const name = files[record.fileIndex]
    const fileReport = report.files[record.fileIndex]
    let count = 0
    const emit = (problem: PendingProblem) => {
      count++
      fileReport.problems++
      report.problemCounts[problem.code] = (report.problemCounts[problem.code] ?? 0) + 1
      report.ok = false
      const full: DatasetProblem = {file: name, line: record.number, ...problem}
      if (report.problems.length < limit) report.problems.push(full)
      else report.problemsOmitted++
      options.onProblem?.(full)
    }
    record.early.forEach(emit)
    if (scanned && record.scan) {
      if (scanned.id) {
        const first = ids.addOrGet(scanned.id[0], scanned.id[1], record.fileIndex, record.number)
        if (first)
          emit({
            code: 'duplicate-id',
            column: locatePointer(record.scan.text, '/id') + 1,
            pointer: '/id',
            message: `duplicate id "${record.scan.id}" (first on ${basename(files[first.file])}:${first.line}) — ids must be unique`,
          })
      }
      const sameAs = contents.addOrGet(scanned.content[0], scanned.content[1], record.fileIndex, record.number)
      if (sameAs)
        emit({
          code: 'duplicate-content',
          column: 1,
          message: `same content as ${basename(files[sameAs.file])}:${sameAs.line}${record.scan.id === undefined ? '' : ' (apart from the id)'} — drop the duplicate (--fix keeps the first)`,
        })
    }
    record.late.forEach(emit)
    for (const pii of scanned?.pii ?? []) emit({code: 'pii', ...pii})
    record.last.forEach(emit)

    const drop = (reason: string) => report.fix?.dropped.push({file: name, line: record.number, reason})
    if (record.drop !== undefined) {
      drop(record.drop)
      return
    }
    const held = count - (record.forgiven ?? 0)
    if (record.facts) addFacts(report.summary, record.facts, held === 0)
    if (held === 0) report.cleanExamples++
    if (!writer || !record.scan || !record.format) return
    if (held > 0) {
      drop(
        `${held} problem(s), first: ${report.problems.findLast((problem) => problem.line === record.number && problem.file === name)?.message ?? 'see the report'}`,
      )
      return
    }
    // A question file stays a question file: there is no trajectory to convert.
    if (record.format === 'playbook' || record.format === 'question') await write(record.scan.text)
    else {
      const converted = toPlaybook(record.value, record.format)
      if (!converted.ok) {
        drop(`cannot convert from the ${record.format} format: ${converted.reason}`)
        return
      }
      report.fix!.converted++
      await write(JSON.stringify(converted.example))
    }
    report.fix!.written++
  }

  // Main thread: read, parse, check (one batch); scanner: fingerprints and PII (the batch before).
  let batch: LineRecord[] = []
  let inFlight: {records: LineRecord[]; results: Promise<LineScanResult[]>} | undefined
  const settle = async (done: {records: LineRecord[]; results: Promise<LineScanResult[]>}) => {
    const results = await done.results
    let next = 0
    for (const record of done.records) await finish(record, record.scan ? results[next++] : undefined)
  }
  const dispatch = async () => {
    if (batch.length === 0) return
    const dispatched = {
      records: batch,
      results: scanner.scan(batch.flatMap((record) => (record.scan ? [record.scan] : []))),
    }
    batch = []
    if (inFlight) await settle(inFlight)
    inFlight = dispatched
  }

  try {
    for (const [fileIndex, file] of files.entries()) {
      const fileReport = {file, lines: 0, examples: 0, problems: 0}
      report.files.push(fileReport)
      const total = statSync(file).size
      const isEvalFile = evalPaths.has(resolve(file))
      // readline directly, not through readLines(): a generator's extra await per line shows at millions of lines.
      const stream = createReadStream(file, {encoding: 'utf8', highWaterMark: 1 << 20})
      if (options.onProgress) stream.on('data', () => options.onProgress!(file, stream.bytesRead, total))
      let number = 0
      for await (const line of createInterface({input: stream, crlfDelay: Infinity})) {
        fileReport.lines = ++number
        const record: LineRecord = {fileIndex, number, early: [], late: [], last: []}
        batch.push(record)
        if (batch.length >= BATCH_LINES) await dispatch()

        let text = line
        let value: unknown
        try {
          value = JSON.parse(text)
        } catch {
          const syntax = findSyntaxProblem(text) ?? {offset: 0, message: 'not valid JSON'}
          const code: ProblemCode = syntax.message.startsWith('blank line')
            ? 'blank-line'
            : syntax.message.includes('comment')
              ? 'comment'
              : syntax.message.startsWith('trailing comma')
                ? 'trailing-comma'
                : 'invalid-json'
          const next =
            code === 'blank-line' || code === 'comment'
              ? 'remove it (--fix drops it)'
              : code === 'trailing-comma'
                ? 'delete the comma (--fix repairs it)'
                : 'fix the JSON on this line'
          record.early.push({code, column: syntax.offset + 1, message: `${syntax.message} — ${next}`})
          if (code === 'blank-line' || (code === 'comment' && syntax.offset === text.search(/\S/))) {
            record.drop = code === 'blank-line' ? 'blank line' : 'comment line'
            continue
          }
          const repaired = repairLine(text)
          if (repaired === undefined) {
            report.examples++
            fileReport.examples++
            record.drop = `invalid JSON: ${syntax.message}`
            continue
          }
          report.fix?.repaired.push({
            file,
            line: number,
            what:
              code === 'comment'
                ? 'comment removed'
                : code === 'trailing-comma'
                  ? 'trailing comma removed'
                  : 'repaired',
          })
          text = repaired.text
          value = repaired.value
          // Reported, but not held against the repaired line: --fix keeps it when nothing else is wrong.
          record.forgiven = 1
        }
        report.examples++
        fileReport.examples++

        const format = options.format && options.format !== 'auto' ? options.format : detectFormat(value)
        if (!format) {
          const keys =
            value !== null && typeof value === 'object' && !Array.isArray(value)
              ? Object.keys(value).join(', ')
              : typeof value
          record.early.push({
            code: 'unknown-format',
            column: 1,
            message: `not an example in any known format (found ${keys || 'an empty object'}); expected playbook {id, instruction, input, trajectory, final, meta}, trajectory {instruction, tools, trajectory, final_answer} or instruction {instruction, input, output} or question {query, context?, expected} — or pass --format`,
          })
          record.drop = 'unknown format'
          continue
        }
        const {problems, facts} = checkExample(value, format)
        for (const problem of problems) {
          const at = locatePointer(text, problem.pointer, problem.key)
          record.early.push({
            code: problem.code,
            column: problem.textOffset === undefined ? at + 1 : at + 2 + problem.textOffset,
            message: problem.message,
            pointer: problem.pointer,
          })
        }
        record.format = format
        record.facts = facts
        record.value = value

        // Duplicate content is the line without its id: one example under two ids is still one example.
        const object = value as Record<string, unknown>
        const id = format === 'playbook' && typeof object.id === 'string' ? object.id : undefined
        const idText = id === undefined ? undefined : `"id":${JSON.stringify(id)}`
        const idAt = idText === undefined ? -1 : text.indexOf(idText)
        record.scan = {
          text,
          skipFrom: idAt >= 0 ? idAt : text.length,
          skipTo: idAt >= 0 ? idAt + idText!.length : text.length,
          ...(id === undefined ? {} : {id}),
        }

        if (leaks && !isEvalFile) {
          for (const key of leakageKeys(value)) {
            const where = leaks.get(key)
            if (where)
              record.late.push({
                code: 'leakage',
                column: 1,
                message: `also in the eval set at ${where} (${key.startsWith('finding:') ? 'same finding' : 'same instruction'}) — train/eval leakage; remove it from one of them`,
              })
          }
        }
        const trainedKey = trained ? leakageKeys(value).find((key) => trained.has(key)) : undefined
        if (trainedKey) {
          const same = trainedKey.startsWith('finding:') ? 'same finding' : 'same instruction'
          const where = `also in the training data at ${trained!.get(trainedKey)} (${same})`
          const message = `${where} — train/eval leakage: the model has seen it; remove it from one of them`
          record.late.push({code: 'leakage', column: 1, message})
        }
        if (
          format === 'playbook' &&
          !isEvalFile &&
          leaks &&
          (object.meta as Record<string, unknown> | undefined)?.split === 'eval'
        ) {
          record.late.push({
            code: 'inconsistent',
            column: locatePointer(text, '/meta/split') + 1,
            message: '/meta/split: "eval" in a training file — eval examples belong in the --eval file',
            pointer: '/meta/split',
          })
        }
        if (options.tokenCounter && format === 'playbook' && problems.length === 0) {
          const tokens = await options.tokenCounter.count(value as never)
          report.tokens!.longest = Math.max(report.tokens!.longest, tokens)
          if (options.maxTokens !== undefined && tokens > options.maxTokens) {
            report.tokens!.over++
            record.last.push({
              code: 'too-long',
              column: 1,
              message: `${tokens} tokens in ${options.tokenCounter.model}'s tokenizer, over the limit of ${options.maxTokens} — training skips a conversation longer than its maxLength; shorten the trajectory or raise the limit`,
            })
          }
        }
      }
    }
    await dispatch()
    if (inFlight) await settle(inFlight)
    if (writer) {
      writer.end()
      await once(writer, 'finish')
      renameSync(temporary!, fixOut!)
    }
    return report
  } catch (error) {
    if (writer) {
      writer.destroy()
      rmSync(temporary!, {force: true})
    }
    throw error
  } finally {
    await scanner.close()
  }
}

function addFacts(summary: DatasetSummary, facts: ExampleFacts, clean: boolean): void {
  if (!clean) return
  summary.examples++
  count(summary.byFormat, facts.format)
  count(summary.byRule, facts.rule)
  count(summary.byRootCause, facts.rootCause)
  count(summary.byOutcome, facts.outcome)
  for (const tool of facts.tools) count(summary.byTool, tool)
  count(summary.steps, String(facts.steps))
}

/** Trailing commas and a trailing comment removed, when that makes the line valid JSON. */
export function repairLine(text: string): {text: string; value: unknown} | undefined {
  let candidate = text
  for (let attempt = 0; attempt < 20; attempt++) {
    const problem = findSyntaxProblem(candidate)
    if (!problem) {
      try {
        return {text: candidate.trim(), value: JSON.parse(candidate)}
      } catch {
        return undefined
      }
    }
    if (problem.message.startsWith('trailing comma'))
      candidate = candidate.slice(0, problem.offset) + candidate.slice(problem.offset + 1)
    else if (problem.message.startsWith('comment after')) candidate = candidate.slice(0, problem.offset)
    else return undefined
  }
  return undefined
}
