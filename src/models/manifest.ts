import {readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {basename} from 'node:path'

import {z} from 'zod'

import {ConfigError} from '../errors.js'

/** The manifest format this version of invagent reads and writes. */
export const MANIFEST_SCHEMA_VERSION = 1

/** Registry names: also the manifest's file name (`<name>.json`), so no separators or spaces. */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256: 64 lowercase hex digits')
const modelName = z
  .string()
  .regex(
    MODEL_NAME_PATTERN,
    'expected a model name: letters, digits, ".", "_" and "-", starting with a letter or digit, at most 128 characters',
  )

/**
 * Where a fine-tuned model came from (`invagent train`): enough to reproduce the job and to tell
 * two trainings apart. Quantized models copy their parent's.
 */
export const TrainingProvenance = z
  .object({
    jobId: z.string().min(1),
    runner: z.enum(['ssh', 'local', 'bundle']),
    /** The validated training config (train.yaml with every default applied). */
    config: z.record(z.string(), z.unknown()),
    evalDatasetSha256: sha256Hex.nullable(),
    /** Versions the training host actually ran (null: not installed there). */
    packages: z.record(z.string(), z.string().nullable()),
    /** Versions requirements.txt pinned. */
    pinned: z.record(z.string(), z.string()),
    /** The llama.cpp source the conversion script came from: the same as the local llama-server's. */
    llamaCpp: z.object({tag: z.string(), commit: z.string().nullable(), key: z.string()}).strict(),
    /** qlora-nf4 (4-bit base), or lora-bf16 / lora-fp16 (16-bit base: by choice, or because bitsandbytes could not load). */
    mode: z.string().nullable(),
    trainLoss: z.number().nullable(),
    evalLoss: z.number().nullable(),
    steps: z.number().int().nullable(),
    /** The project's git commit when the job was created, and whether the tree had changes. */
    gitCommit: z.string().nullable(),
    gitDirty: z.boolean().nullable(),
    /** Where the LoRA adapter was saved (adapters/<job>). */
    adapter: z.string().nullable(),
  })
  .strict()

export type TrainingProvenance = z.output<typeof TrainingProvenance>

/**
 * A model manifest, `models/<name>.json`: what the GGUF is (architecture, quantization, size,
 * sha256) and where it came from (base model, training dataset, parent model, the command that
 * made it). `file` is relative to the models folder when the GGUF lies inside it, else absolute.
 */
export const ModelManifest = z
  .object({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    name: modelName,
    file: z.string().min(1),
    sha256: sha256Hex,
    size: z.number().int().nonnegative(),
    architecture: z.string().min(1),
    quantization: z.string().min(1),
    parameterCount: z.number().int().nonnegative(),
    /** The model this one was trained or converted from (a registry name or an upstream id such as microsoft/Phi-3-mini-4k-instruct). */
    baseModel: z.string().min(1).nullable().default(null),
    /** sha256 of the training dataset, for a fine-tuned model. */
    datasetSha256: sha256Hex.nullable().default(null),
    /** The registry name of the model this one was derived from (e.g. the F16 a Q4_K_M was quantized from). */
    parent: modelName.nullable().default(null),
    /** The command line that created the model. */
    createdBy: z.string().min(1),
    createdAt: z.iso.datetime({offset: true}),
    /** How a fine-tuned model was trained; absent for models registered from elsewhere. */
    training: TrainingProvenance.optional(),
  })
  .strict()

export type ModelManifest = z.output<typeof ModelManifest>

/** A JSON pointer (RFC 6901) to a path inside a document. */
export function jsonPointer(path: readonly PropertyKey[]): string {
  return path.map((segment) => '/' + String(segment).replaceAll('~', '~0').replaceAll('/', '~1')).join('')
}

function valueAt(document: unknown, path: readonly PropertyKey[]): unknown {
  let value = document
  for (const segment of path)
    value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[segment] : undefined
  return value
}

function describeValue(value: unknown): string {
  const text = JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 59)}…` : text
}

/** `file:line:column` of a character offset. */
function lineAndColumn(text: string, position: number): {line: number; column: number} {
  const before = text.slice(0, position)
  const line = before.split('\n').length
  return {line, column: position - before.lastIndexOf('\n')}
}

/**
 * Parses and validates a manifest's text. Bad JSON is reported as `file:line:column`, schema
 * violations as `file#/json/pointer: expected …, found …`; both throw ConfigError.
 */
export function parseManifest(text: string, file: string): ModelManifest {
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch (error) {
    const message = (error as Error).message
    const position = /at position (\d+)/.exec(message)
    const where = position ? lineAndColumn(text, Number(position[1])) : undefined
    const reason = message.replace(/\s*(in JSON )?at position \d+.*$/s, '').replace(/\s+in JSON$/, '')
    throw new ConfigError(`${file}${where ? `:${where.line}:${where.column}` : ''}: invalid JSON: ${reason}`, {
      code: 'MANIFEST_INVALID',
      suggestions: ['Fix the file by hand, or delete it and register the model again.'],
    })
  }
  const version = valueAt(document, ['schemaVersion'])
  if (typeof version === 'number' && version > MANIFEST_SCHEMA_VERSION) {
    throw new ConfigError(
      `${file}#/schemaVersion: manifest format ${version} is newer than this invagent reads (${MANIFEST_SCHEMA_VERSION}).`,
      {
        code: 'MANIFEST_TOO_NEW',
        suggestions: ['Upgrade invagent.'],
      },
    )
  }
  const result = ModelManifest.safeParse(document)
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys')
        return `${file}#${jsonPointer(issue.path)}: unknown key(s) ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`
      const value = valueAt(document, issue.path)
      const expected = issue.message.replace(/^Invalid input: /, '').replace(/, received \w+$/, '')
      return `${file}#${jsonPointer(issue.path)}: ${value === undefined ? `missing (${expected})` : `${expected}, found ${describeValue(value)}`}`
    })
    throw new ConfigError(problems.join('\n'), {
      code: 'MANIFEST_INVALID',
      suggestions: ['Fix the file by hand, or delete it and register the model again.'],
    })
  }
  const expectedName = basename(file).replace(/\.json$/, '')
  if (result.data.name !== expectedName) {
    throw new ConfigError(
      `${file}#/name: "${result.data.name}" does not match the manifest's file name (expected "${expectedName}").`,
      {
        code: 'MANIFEST_INVALID',
        suggestions: [`Rename the file to ${result.data.name}.json or set "name" to "${expectedName}".`],
      },
    )
  }
  return result.data
}

/** Reads and validates a manifest file (see parseManifest). */
export function readManifest(path: string): ModelManifest {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new ConfigError(`cannot read the manifest ${path}: ${(error as Error).message}`, {
      code: 'MANIFEST_UNREADABLE',
      cause: error,
    })
  }
  return parseManifest(text, path)
}

/** Writes a manifest atomically (temporary file, then rename), keys in schema order, with a final newline. */
export function writeManifest(path: string, manifest: ModelManifest): void {
  const validated = ModelManifest.parse(manifest)
  const temporary = `${path}.${process.pid}.tmp`
  try {
    writeFileSync(temporary, JSON.stringify(validated, null, 2) + '\n')
    renameSync(temporary, path)
  } catch (error) {
    rmSync(temporary, {force: true})
    throw new ConfigError(`cannot write the manifest ${path}: ${(error as Error).message}`, {
      code: 'MANIFEST_UNWRITABLE',
      cause: error,
    })
  }
}

/** The command line of this process as a person would type it again (`invagent models add x.gguf --name x`). */
export function currentCommandLine(argv: readonly string[] = process.argv.slice(2), bin = 'invagent'): string {
  const quote = (argument: string) =>
    /^[\w@%+=:,./-]+$/.test(argument) ? argument : `'${argument.replaceAll("'", `'\\''`)}'`
  return [bin, ...argv.map(quote)].join(' ')
}
