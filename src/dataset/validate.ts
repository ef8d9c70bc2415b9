import {createReadStream, createWriteStream, existsSync, renameSync, rmSync, statSync} from 'node:fs'
import {basename, dirname, resolve} from 'node:path'
import {createInterface} from 'node:readline'
import {once} from 'node:events'

import {UserError} from '../errors.js'
import {checkExample, type ExampleFacts, type ProblemCode} from './check.js'
import {toPlaybook} from './convert.js'
import {FingerprintTable} from './fingerprint-table.js'
import {findSyntaxProblem, locatePointer, toPointer} from './json-text.js'
import {findPii} from './pii.js'
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
  fix?: {out: string; written: number; dropped: Array<{file: string; line: number; reason: string}>; repaired: Array<{file: string; line: number; what: string}>; converted: number}
}

export interface ValidateOptions {
  format?: FormatOption
  /** Held-out files: any example of FILES that also appears in one of them is leakage. */
  evalFiles?: string[]
  tokenCounter?: TokenCounter
  maxTokens?: number
  fix?: string
  /** Problems kept in the report (all are counted). Default 10,000. */
  problemLimit?: number
  onProblem?: (problem: DatasetProblem) => void
  onProgress?: (file: string, bytesRead: number, bytesTotal: number) => void
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
      break
    }
  }
  return keys
}

/** Every string in a value (object keys too) with its JSON pointer. */
function* strings(value: unknown, path: Array<string | number> = []): Generator<[string, string, boolean]> {
  if (typeof value === 'string') yield [toPointer(path), value, false]
  else if (Array.isArray(value)) for (const [index, item] of value.entries()) yield* strings(item, [...path, index])
  else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      yield [toPointer(path), key, true]
      yield* strings(item, [...path, key])
    }
  }
}

/** Lines of a file with their 1-based numbers; CRLF handled, a final newline optional. */
async function* readLines(file: string, onBytes?: (bytes: number) => void): AsyncGenerator<[number, string]> {
  const stream = createReadStream(file, {encoding: 'utf8', highWaterMark: 1 << 20})
  if (onBytes) stream.on('data', () => onBytes(stream.bytesRead))
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
        continue
      }
      for (const key of leakageKeys(value)) if (!index.has(key)) index.set(key, `${basename(file)}:${number}`)
    }
  }
  return index
}

function checkInputs(files: readonly string[], label: string): void {
  for (const file of files) {
    if (!existsSync(file)) throw new UserError(`${label} ${file} does not exist`, {suggestions: ['Check the path; datasets ship in datasets/ (playbook.jsonl, eval.jsonl).']})
    if (statSync(file).isDirectory()) throw new UserError(`${label} ${file} is a directory, expected a JSONL file`)
  }
}

/** Validates JSONL dataset files; see the file comment. */
export async function validateDatasetFiles(files: string[], options: ValidateOptions = {}): Promise<DatasetValidationReport> {
  if (files.length === 0) throw new UserError('no dataset file given', {suggestions: ['invagent dataset validate datasets/playbook.jsonl']})
  checkInputs(files, 'dataset file')
  checkInputs(options.evalFiles ?? [], '--eval file')
  const limit = options.problemLimit ?? 10_000
  const report: DatasetValidationReport = {ok: true, files: [], examples: 0, cleanExamples: 0, problems: [], problemsOmitted: 0, problemCounts: {}, summary: emptySummary()}
  const leaks = options.evalFiles && options.evalFiles.length > 0 ? await leakageIndex(options.evalFiles) : undefined
  const evalPaths = new Set((options.evalFiles ?? []).map((file) => resolve(file)))
  const ids = new FingerprintTable()
  const contents = new FingerprintTable()
  const fixOut = options.fix ? resolve(options.fix) : undefined
  if (fixOut && files.some((file) => resolve(file) === fixOut)) throw new UserError(`--fix ${options.fix} is one of the files being validated; write the cleaned copy elsewhere`)
  const temporary = fixOut ? `${fixOut}.tmp-${process.pid}` : undefined
  const writer = temporary ? createWriteStream(temporary, {encoding: 'utf8'}) : undefined
  if (fixOut) report.fix = {out: fixOut, written: 0, dropped: [], repaired: [], converted: 0}
  const write = async (text: string) => {
    if (!writer!.write(text + '\n')) await once(writer!, 'drain')
  }
  if (options.tokenCounter) report.tokens = {model: options.tokenCounter.model, maxTokens: options.maxTokens ?? 0, longest: 0, over: 0}

  try {
    for (const [fileIndex, file] of files.entries()) {
      const name = file
      const fileReport = {file: name, lines: 0, examples: 0, problems: 0}
      report.files.push(fileReport)
      const total = statSync(file).size
      const isEvalFile = evalPaths.has(resolve(file))
      for await (const [number, line] of readLines(file, options.onProgress ? (bytes) => options.onProgress!(name, bytes, total) : undefined)) {
        fileReport.lines = number
        let lineProblems = 0
        const report1 = (code: ProblemCode, column: number, message: string, pointer?: string) => {
          lineProblems++
          fileReport.problems++
          report.problemCounts[code] = (report.problemCounts[code] ?? 0) + 1
          report.ok = false
          const problem: DatasetProblem = {file: name, line: number, column, code, message, ...(pointer === undefined ? {} : {pointer})}
          if (report.problems.length < limit) report.problems.push(problem)
          else report.problemsOmitted++
          options.onProblem?.(problem)
        }
        const drop = (reason: string) => report.fix?.dropped.push({file: name, line: number, reason})

        let text = line
        let value: unknown
        try {
          value = JSON.parse(text)
        } catch {
          const syntax = findSyntaxProblem(text) ?? {offset: 0, message: 'not valid JSON'}
          const code: ProblemCode = syntax.message.startsWith('blank line') ? 'blank-line' : syntax.message.includes('comment') ? 'comment' : syntax.message.startsWith('trailing comma') ? 'trailing-comma' : 'invalid-json'
          const next = code === 'blank-line' || code === 'comment' ? 'remove it (--fix drops it)' : code === 'trailing-comma' ? 'delete the comma (--fix repairs it)' : 'fix the JSON on this line'
          report1(code, syntax.offset + 1, `${syntax.message} — ${next}`)
          if (code === 'blank-line' || (code === 'comment' && syntax.offset === text.search(/\S/))) {
            drop(code === 'blank-line' ? 'blank line' : 'comment line')
            continue
          }
          const repaired = repairLine(text)
          if (repaired === undefined) {
            drop(`invalid JSON: ${syntax.message}`)
            report.examples++
            fileReport.examples++
            continue
          }
          report.fix?.repaired.push({file: name, line: number, what: code === 'comment' ? 'comment removed' : code === 'trailing-comma' ? 'trailing comma removed' : 'repaired'})
          text = repaired.text
          value = repaired.value
          lineProblems = 0 // a repaired line is judged on its content from here on
        }
        report.examples++
        fileReport.examples++

        const format = options.format && options.format !== 'auto' ? options.format : detectFormat(value)
        if (!format) {
          const keys = value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value).join(', ') : typeof value
          report1('unknown-format', 1, `not an example in any known format (found ${keys || 'an empty object'}); expected playbook {id, instruction, input, trajectory, final, meta}, trajectory {instruction, tools, trajectory, final_answer} or instruction {instruction, input, output} — or pass --format`)
          drop('unknown format')
          continue
        }
        const {problems, facts} = checkExample(value, format)
        for (const problem of problems) {
          const at = locatePointer(text, problem.pointer, problem.key)
          const column = problem.textOffset === undefined ? at + 1 : at + 2 + problem.textOffset
          report1(problem.code, column, problem.message, problem.pointer)
        }

        const object = value as Record<string, unknown>
        if (format === 'playbook' && typeof object.id === 'string') {
          const first = ids.addOrGet(object.id, fileIndex, number)
          if (first) report1('duplicate-id', locatePointer(text, '/id') + 1, `duplicate id "${object.id}" (first on ${basename(files[first.file])}:${first.line}) — ids must be unique`, '/id')
        }
        // Duplicate content: the line without its id (two copies of an example under two ids are still one example).
        const idText = format === 'playbook' && typeof object.id === 'string' ? `"id":${JSON.stringify(object.id)}` : undefined
        const idAt = idText === undefined ? -1 : text.indexOf(idText)
        const sameAs = idAt >= 0 ? contents.addOrGet(text, fileIndex, number, idAt, idAt + idText!.length) : contents.addOrGet(text, fileIndex, number)
        if (sameAs) report1('duplicate-content', 1, `same content as ${basename(files[sameAs.file])}:${sameAs.line}${format === 'playbook' ? ' (apart from the id)' : ''} — drop the duplicate (--fix keeps the first)`)

        if (leaks && !isEvalFile) {
          for (const key of leakageKeys(value)) {
            const where = leaks.get(key)
            if (where) report1('leakage', 1, `also in the eval set at ${where} (${key.startsWith('finding:') ? 'same finding' : 'same instruction'}) — train/eval leakage; remove it from one of them`)
          }
        }
        if (format === 'playbook' && isEvalFile === false && leaks && (object.meta as Record<string, unknown> | undefined)?.split === 'eval') {
          report1('inconsistent', locatePointer(text, '/meta/split') + 1, '/meta/split: "eval" in a training file — eval examples belong in the --eval file', '/meta/split')
        }

        if (mayHoldPii(text) && findPii(text).length > 0) {
          for (const [pointer, string, isKey] of strings(value)) {
            for (const match of findPii(string)) {
              const at = locatePointer(text, pointer, isKey ? string : undefined)
              report1('pii', at + (isKey ? 1 : 2) + match.start, `${match.kind === 'email' ? 'an email address' : match.kind === 'phone' ? 'a phone number' : 'a person\'s name'} in ${pointer || '(root)'}${isKey ? ' (a property name)' : ''} — scrub it: invagent dataset scrub FILE`, pointer)
            }
          }
        }

        if (options.tokenCounter && format === 'playbook' && problems.length === 0) {
          const tokens = await options.tokenCounter.count(value as never)
          report.tokens!.longest = Math.max(report.tokens!.longest, tokens)
          if (options.maxTokens !== undefined && tokens > options.maxTokens) {
            report.tokens!.over++
            report1('too-long', 1, `${tokens} tokens in ${options.tokenCounter.model}'s tokenizer, over --max-tokens ${options.maxTokens} — training would cut it; shorten the trajectory or raise the limit`)
          }
        }

        addFacts(report.summary, facts, lineProblems === 0)
        if (lineProblems === 0) report.cleanExamples++
        if (writer) {
          if (lineProblems > 0) {
            drop(`${lineProblems} problem(s), first: ${report.problems.findLast((problem) => problem.line === number && problem.file === name)?.message ?? 'see the report'}`)
            continue
          }
          if (format === 'playbook') await write(text)
          else {
            const converted = toPlaybook(value, format)
            if (!converted.ok) {
              drop(`cannot convert from the ${format} format: ${converted.reason}`)
              continue
            }
            report.fix!.converted++
            await write(JSON.stringify(converted.example))
          }
          report.fix!.written++
        }
      }
    }
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
  }
}

/**
 * A cheap pass before the PII patterns run over a whole line: an email needs an "@", a phone
 * number a run of digits with separators or a leading "+"/"(", a name a capitalised word
 * after a lower-case one. Lines without any of these skip the full scan.
 */
function mayHoldPii(text: string): boolean {
  return text.includes('@') || /[+(]\s?\d|\d[-. ]\d{3}|[a-z,;:] [A-Z][a-z]/.test(text)
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
    if (problem.message.startsWith('trailing comma')) candidate = candidate.slice(0, problem.offset) + candidate.slice(problem.offset + 1)
    else if (problem.message.startsWith('comment after')) candidate = candidate.slice(0, problem.offset)
    else return undefined
  }
  return undefined
}

export function fixPathFor(file: string): string {
  return resolve(dirname(file), basename(file).replace(/\.jsonl$/, '') + '.fixed.jsonl')
}
