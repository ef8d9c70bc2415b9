import {readFileSync} from 'node:fs'
import {extname} from 'node:path'

import {isMap, isNode, LineCounter, parseDocument, type Document} from 'yaml'
import type {z} from 'zod'

import {ConfigError, didYouMean} from '../errors.js'
import {TrainConfigSchema, type TrainConfig, type TrainConfigInput} from './config.js'

/*
 * Reads a training config from YAML (`.yaml`/`.yml`) or JSON, validates it, and reports every
 * problem as `file:line:column: path: what was expected, what was found`, with a did-you-mean for
 * misspelt keys. YAML is a superset of JSON, so one parser serves both and gives positions for both.
 */

interface Located {
  line: number
  column: number
}

function position(
  document: Document,
  counter: LineCounter,
  path: readonly PropertyKey[],
  key: boolean,
): Located | undefined {
  // Walk down as far as the path exists; report the deepest node found (the parent of a missing key).
  let node: unknown = document.contents
  let found: unknown = node
  for (const segment of path) {
    if (!isMap(node) && !(isNode(node) && 'items' in node)) break
    const collection = node as {items: Array<{key?: unknown; value?: unknown}> | unknown[]}
    const items = collection.items as Array<{
      key?: {value?: unknown; range?: [number, number, number]}
      value?: unknown
    }>
    const pair = isMap(node) ? items.find((item) => item.key?.value === segment) : undefined
    if (pair) {
      found = key && segment === path.at(-1) ? pair.key : (pair.value ?? pair.key)
      node = pair.value
    } else if (typeof segment === 'number' && Array.isArray(collection.items)) {
      node = (collection.items as unknown[])[segment]
      found = node ?? found
    } else break
  }
  const range = (found as {range?: [number, number, number]} | undefined)?.range
  if (!range) return undefined
  const {line, col} = counter.linePos(range[0])
  return {line, column: col}
}

function describe(value: unknown): string {
  const text = JSON.stringify(value)
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 59)}…` : text
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value
  for (const segment of path)
    current =
      current !== null && typeof current === 'object' ? (current as Record<PropertyKey, unknown>)[segment] : undefined
  return current
}

/** The keys a nested object of the schema accepts (for did-you-mean), found by walking the zod shape. */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let schema: unknown = TrainConfigSchema
  const unwrap = (value: unknown): unknown => {
    let current = value as {def?: {type?: string; innerType?: unknown; in?: unknown; schema?: unknown}; shape?: unknown}
    for (let guard = 0; guard < 10 && current?.def; guard++) {
      if (current.shape) return current
      const next = current.def.innerType ?? current.def.in ?? current.def.schema
      if (!next) break
      current = next as typeof current
    }
    return current
  }
  schema = unwrap(schema)
  for (const segment of path) {
    const shape = (schema as {shape?: Record<string, unknown>}).shape
    if (!shape || !(String(segment) in shape)) return []
    schema = unwrap(shape[String(segment)])
  }
  const shape = (schema as {shape?: Record<string, unknown>}).shape
  return shape ? Object.keys(shape) : []
}

function dotted(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.')
}

/** Formats zod's issues on a config as one line each, with positions when the source is known. */
export function formatConfigIssues(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  source?: {file: string; document: Document; counter: LineCounter},
): string[] {
  const lines: string[] = []
  for (const issue of issues) {
    const prefix = (path: readonly PropertyKey[], key = false) => {
      const where = source ? position(source.document, source.counter, path, key) : undefined
      return source ? `${source.file}${where ? `:${where.line}:${where.column}` : ''}: ` : ''
    }
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const guess = didYouMean(key, knownKeys(issue.path))
        lines.push(
          `${prefix([...issue.path, key], true)}${dotted([...issue.path, key])}: unknown key${guess ? ` — did you mean "${guess}"?` : ` (expected one of: ${knownKeys(issue.path).join(', ')})`}`,
        )
      }
      continue
    }
    const value = valueAt(input, issue.path)
    const expected = issue.message.replace(/^Invalid input: /, '').replace(/, received \w+$/, '')
    let found = issue.code === 'custom' || value === undefined ? '' : `, found ${describe(value)}`
    if (issue.code === 'invalid_value' && typeof value === 'string') {
      const guess = didYouMean(value, issue.values.map(String))
      if (guess) found += ` — did you mean "${guess}"?`
    }
    lines.push(
      `${prefix(issue.path)}${dotted(issue.path)}: ${value === undefined && issue.code !== 'custom' ? `missing (${expected})` : `${expected}${found}`}`,
    )
  }
  return lines
}

/** Validates a config object (from a file, flags, or both); throws ConfigError listing every problem. */
export function validateTrainConfig(
  input: unknown,
  source?: {file: string; document: Document; counter: LineCounter},
): TrainConfig {
  const result = TrainConfigSchema.safeParse(input)
  if (result.success) return result.data
  const lines = formatConfigIssues(result.error.issues, input, source)
  throw new ConfigError(`invalid training config:\n${lines.map((line) => `  ${line}`).join('\n')}`, {
    code: 'TRAIN_CONFIG_INVALID',
    suggestions: ['The keys, their defaults and limits are listed in the README under `invagent train`.'],
  })
}

/** Reads and parses a YAML or JSON config file without validating it; returns the raw object and its source map. */
export function readTrainConfigFile(file: string): {
  input: TrainConfigInput
  source: {file: string; document: Document; counter: LineCounter}
} {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new ConfigError(
      `cannot read the training config ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`,
      {
        code: 'TRAIN_CONFIG_UNREADABLE',
      },
    )
  }
  const counter = new LineCounter()
  const document = parseDocument(text, {lineCounter: counter, prettyErrors: false, uniqueKeys: true})
  if (document.errors.length > 0) {
    const kind = ['.json'].includes(extname(file).toLowerCase()) ? 'JSON' : 'YAML'
    const lines = document.errors.map((error) => {
      const {line, col} = counter.linePos(error.pos[0])
      return `  ${file}:${line}:${col}: invalid ${kind}: ${error.message.split('\n')[0]}`
    })
    throw new ConfigError(`cannot parse the training config:\n${lines.join('\n')}`, {code: 'TRAIN_CONFIG_INVALID'})
  }
  const input = (document.toJS() ?? {}) as unknown
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError(
      `${file}:1:1: expected a mapping of settings (baseModel, lora, training, …), found ${Array.isArray(input) ? 'a list' : describe(input)}`,
      {
        code: 'TRAIN_CONFIG_INVALID',
      },
    )
  }
  return {input: input as TrainConfigInput, source: {file, document, counter}}
}

/** Deep merge of plain objects: `override`'s defined values win. */
function merge(base: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {...base}
  for (const [key, value] of Object.entries(override)) {
    if (value === undefined) continue
    const existing = result[key]
    result[key] =
      value !== null &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      existing !== null &&
      typeof existing === 'object' &&
      !Array.isArray(existing)
        ? merge(existing as Record<string, unknown>, value as Record<string, unknown>)
        : value
  }
  return result
}

/**
 * The effective config: the file's settings (if any), overridden by command-line flags, then
 * defaulted and validated. Positions in errors point into the file for the keys that came from it.
 */
export function loadTrainConfig(options: {file?: string; overrides?: TrainConfigInput} = {}): TrainConfig {
  if (!options.file) return validateTrainConfig(options.overrides ?? {})
  const {input, source} = readTrainConfigFile(options.file)
  return validateTrainConfig(
    merge(input as Record<string, unknown>, (options.overrides ?? {}) as Record<string, unknown>),
    source,
  )
}
