import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {Ajv, type ValidateFunction} from 'ajv'

import {OUTPUT_SCHEMAS} from '../../src/cli/output-schemas.js'

/*
 * The --json contract as a CI user checks it: the raw stdout of a command against the JSON Schema
 * committed under schemas/, with ajv in strict mode. zod's parse drops fields it does not know, so
 * a new field would pass a test that parses with zod and still break `additionalProperties: false`.
 */

const SCHEMAS = resolve(import.meta.dirname, '../../schemas')
const ajv = new Ajv({strict: true, allowUnionTypes: true, allErrors: true})
// The one format the schemas use (zod's z.iso.datetime()): RFC 3339 with a time zone, and a real date.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/
ajv.addFormat('date-time', {
  type: 'string',
  validate: (value: string) => RFC3339.test(value) && !Number.isNaN(Date.parse(value)),
})
const validators = new Map<string, ValidateFunction>()

function validatorFor(id: string): ValidateFunction {
  let validate = validators.get(id)
  if (!validate) {
    validate = ajv.compile(JSON.parse(readFileSync(join(SCHEMAS, `output-${id.replaceAll(' ', '-')}.json`), 'utf8')))
    validators.set(id, validate)
  }
  return validate
}

/** The command id that `args` run (its longest leading words that name one), or undefined. */
export function commandIdOf(args: readonly string[]): string | undefined {
  const words = args.slice(0, 2).filter((word) => !word.startsWith('-'))
  for (let length = words.length; length > 0; length--) {
    const id = words.slice(0, length).join(' ')
    if (id !== 'error' && id in OUTPUT_SCHEMAS) return id
  }
  return undefined
}

/**
 * Problems of one --json document of command `id` against its committed schema (or the error schema); empty when it
 * conforms.
 */
export function contractProblems(id: string, document: unknown): string[] {
  // A failure prints {"error": …} alone; some results (train status) have an `error` field of their own.
  const isError =
    document !== null &&
    typeof document === 'object' &&
    !Array.isArray(document) &&
    Object.keys(document).length === 1 &&
    'error' in document
  const validate = validatorFor(isError ? 'error' : id)
  if (validate(document)) return []
  return (validate.errors ?? []).map(
    (error) =>
      `${isError ? 'error' : id}: ${error.instancePath || '/'} ${error.message}` +
      `${error.params && 'additionalProperty' in error.params ? ` "${String(error.params.additionalProperty)}"` : ''}`,
  )
}

/**
 * Checks the raw stdout of a command run with --json: one JSON document, or JSON Lines for
 * `serve`. Throws with every violation, so a test that runs the command fails on a broken contract.
 */
export function assertJsonContract(args: readonly string[], stdout: string): void {
  const id = commandIdOf(args)
  if (id === undefined || stdout.trim() === '') return
  const documents = id === 'serve' ? stdout.split('\n').filter((line) => line.trim() !== '') : [stdout]
  const problems: string[] = []
  for (const text of documents) {
    let document: unknown
    try {
      document = JSON.parse(text)
    } catch {
      problems.push(`${id}: stdout is not JSON: ${text.slice(0, 200)}`)
      continue
    }
    problems.push(...contractProblems(id, document))
  }
  if (problems.length > 0)
    throw new Error(`\`invagent ${args.join(' ')}\` broke its --json contract:\n${problems.join('\n')}`)
}
