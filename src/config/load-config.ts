import {existsSync, readFileSync, statSync} from 'node:fs'
import {join, relative, resolve} from 'node:path'

import {isMap, isScalar, LineCounter, parseDocument, type Document, type Node} from 'yaml'
import type {z} from 'zod'

import {ConfigError, didYouMean} from '../errors.js'
import {InvagentConfig, SECRET_KEYS} from './schema.js'

/** The file looked for in the working directory when no --config is given. */
export const CONFIG_FILE_NAME = 'invagent.yaml'

export interface LoadedConfig {
  /** Absolute path of the file read. */
  path: string
  config: InvagentConfig
  /** The values substituted for ${ENV_VAR} references: never to be printed. */
  secrets: string[]
}

/** A whole value that is one environment reference: what a secret must be written as. */
const REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/
const REFERENCES = /\$\{([^}]*)\}/g
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

interface Problem {
  offset: number | undefined
  message: string
}

/**
 * Reads `--config FILE`, or `invagent.yaml` in `cwd` when there is one (undefined when there is
 * not). The file is validated against the schema; every problem is reported at file:line:col,
 * unknown keys with the nearest known one. `${ENV_VAR}` references are replaced by the
 * variable's value; passwords and tokens may only be written that way.
 */
export function loadConfig(
  options: {file?: string; cwd?: string; env?: NodeJS.ProcessEnv} = {},
): LoadedConfig | undefined {
  const cwd = options.cwd ?? process.cwd()
  const env = options.env ?? process.env
  let path: string
  if (options.file !== undefined) {
    path = resolve(cwd, options.file)
    if (!existsSync(path) || !statSync(path).isFile()) {
      throw new ConfigError(`config file not found: ${options.file}`, {
        code: 'CONFIG_NOT_FOUND',
        suggestions: ['Check the --config path.'],
      })
    }
  } else {
    path = join(cwd, CONFIG_FILE_NAME)
    if (!existsSync(path)) return undefined
  }
  return parseConfig(readFileSync(path, 'utf8'), path, env, cwd)
}

/** Parses and validates config text; `path` names it in messages. */
export function parseConfig(
  text: string,
  path: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): LoadedConfig {
  const shown = relative(cwd, path) || path
  const lineCounter = new LineCounter()
  const document = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true})
  const at = (offset: number | undefined) => {
    if (offset === undefined) return shown
    const {line, col} = lineCounter.linePos(offset)
    return `${shown}:${line}:${col}`
  }
  const fail = (problems: Problem[]): never => {
    const lines = problems.map((problem) => `${at(problem.offset)}: ${problem.message}`)
    const unknownKeys = problems.some((problem) => problem.message.startsWith('unknown key'))
    throw new ConfigError(
      lines.length === 1 ? lines[0] : `${lines.length} problems in ${shown}:\n  ${lines.join('\n  ')}`,
      {
        code: 'CONFIG_INVALID',
        suggestions: !unknownKeys
          ? []
          : [
              'Keys: inventory; engine {name, model, url, threads, ctx, max-tokens, seed, api-key}; ' +
                'policy {profile, max-writes-per-finding, max-writes-per-run, max-impact}; approval {above, yes}.',
            ],
      },
    )
  }
  if (document.errors.length > 0)
    fail(document.errors.map((error) => ({offset: error.pos[0], message: error.message.split('\n')[0]})))
  const raw: unknown = document.toJS() ?? {}
  const secrets: string[] = []
  const problems: Problem[] = [...checkSecrets(document, raw), ...expandReferences(document, [], raw, env, secrets)]
  if (problems.length > 0) fail(problems)
  const expanded = substitute(raw, env)
  const parsed = InvagentConfig.safeParse(expanded)
  if (!parsed.success) fail(parsed.error.issues.flatMap((issue) => describeIssue(document, issue)))
  return {path, config: (parsed as {data: InvagentConfig}).data, secrets}
}

function nodeAt(document: Document, path: ReadonlyArray<PropertyKey>): Node | undefined {
  return document.getIn(path as unknown[], true) as Node | undefined
}

function offsetOf(document: Document, path: ReadonlyArray<PropertyKey>): number | undefined {
  for (let length = path.length; length >= 0; length--) {
    const node = nodeAt(document, path.slice(0, length))
    if (node?.range) return node.range[0]
  }
  return undefined
}

/** Where a key is written in a mapping (its key, not its value). */
function keyOffset(document: Document, path: ReadonlyArray<PropertyKey>, key: string): number | undefined {
  const node = path.length === 0 ? document.contents : nodeAt(document, path)
  if (isMap(node)) {
    for (const pair of node.items)
      if (isScalar(pair.key) && pair.key.value === key && pair.key.range) return pair.key.range[0]
  }
  return offsetOf(document, path)
}

function knownKeys(path: ReadonlyArray<PropertyKey>): string[] {
  let schema: z.ZodType = InvagentConfig
  for (const segment of path) {
    const inner = unwrap(schema)
    const shape = (inner as unknown as {shape?: Record<string, z.ZodType>}).shape
    if (!shape || !(String(segment) in shape)) return []
    schema = shape[String(segment)]
  }
  const shape = (unwrap(schema) as unknown as {shape?: Record<string, z.ZodType>}).shape
  return shape ? Object.keys(shape) : []
}

function unwrap(schema: z.ZodType): z.ZodType {
  const def = (schema as unknown as {def: {type: string; innerType?: z.ZodType}}).def
  return def.type === 'optional' && def.innerType ? unwrap(def.innerType) : schema
}

function describeIssue(document: Document, issue: z.core.$ZodIssue): Problem[] {
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(issue.path)
    return issue.keys.map((key) => {
      const near = didYouMean(key, known)
      const where = issue.path.length > 0 ? ` in ${issue.path.join('.')}` : ''
      return {
        offset: keyOffset(document, issue.path, key),
        message: `unknown key "${key}"${where}${near ? ` — did you mean "${near}"?` : ` (known: ${known.join(', ')})`}`,
      }
    })
  }
  const name = issue.path.length > 0 ? issue.path.join('.') : 'the file'
  return [{offset: offsetOf(document, issue.path), message: `${name}: ${issue.message}`}]
}

/**
 * A password in the inventory URL and every secret key must be an `${ENV_VAR}` reference, so a
 * config file can be committed and shown without giving anything away.
 */
function checkSecrets(document: Document, raw: unknown): Problem[] {
  const problems: Problem[] = []
  const root = raw as Record<string, unknown>
  if (root !== null && typeof root === 'object' && typeof root.inventory === 'string') {
    const password = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@]*?:([^@/]*)@/.exec(root.inventory)?.[1]
    const secretParameter = /[?&](password|token|api_key|apikey|secret)=([^&]*)/i.exec(root.inventory)
    if (password !== undefined && password !== '' && !REFERENCE.test(password)) {
      problems.push({
        offset: offsetOf(document, ['inventory']),
        message:
          'inventory: the password is written in the file; write it as ${ENV_VAR} ' +
          '(e.g. postgres://user:${PGPASSWORD}@host/db) and set the variable',
      })
    }
    if (secretParameter && !REFERENCE.test(secretParameter[2])) {
      problems.push({
        offset: offsetOf(document, ['inventory']),
        message: `inventory: the ${secretParameter[1]} parameter is written in the file; write it as \${ENV_VAR}`,
      })
    }
  }
  for (const path of SECRET_KEYS) {
    let value: unknown = root
    for (const segment of path)
      value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[segment] : undefined
    if (typeof value === 'string' && !REFERENCE.test(value)) {
      const message =
        `${path.join('.')} is a secret: ` + 'write it as ${ENV_VAR} and set the variable, never the value itself'
      problems.push({offset: offsetOf(document, path), message})
    }
  }
  return problems
}

/** Every `${NAME}` must name a set variable; values are collected as secrets to keep out of output. */
function expandReferences(
  document: Document,
  path: PropertyKey[],
  value: unknown,
  env: NodeJS.ProcessEnv,
  secrets: string[],
): Problem[] {
  if (typeof value === 'string') {
    const problems: Problem[] = []
    for (const match of value.matchAll(REFERENCES)) {
      const name = match[1]
      if (!VARIABLE_NAME.test(name))
        problems.push({
          offset: offsetOf(document, path),
          message: `"\${${name}}" is not a variable reference (letters, digits and _ only)`,
        })
      else if (env[name] === undefined)
        problems.push({offset: offsetOf(document, path), message: `\${${name}} is not set in the environment`})
      else if (env[name] !== '') secrets.push(env[name]!, encodeURIComponent(env[name]!))
    }
    return problems
  }
  if (Array.isArray(value))
    return value.flatMap((item, index) => expandReferences(document, [...path, index], item, env, secrets))
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) =>
      expandReferences(document, [...path, key], item, env, secrets),
    )
  }
  return []
}

/** Replaces references; inside a URL's user information the value is percent-encoded. */
function substitute(value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    const userInfoEnd = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*@/.exec(value)?.[0].length ?? 0
    return value.replace(REFERENCES, (_, name: string, offset: number) => {
      const replacement = env[name] ?? ''
      return offset < userInfoEnd ? encodeURIComponent(replacement) : replacement
    })
  }
  if (Array.isArray(value)) return value.map((item) => substitute(item, env))
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, substitute(item, env)]))
  return value
}
