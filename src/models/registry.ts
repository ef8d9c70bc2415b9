import {existsSync, mkdirSync, readdirSync, statSync} from 'node:fs'
import {basename, isAbsolute, join, relative, resolve, sep} from 'node:path'

import {ConfigError, didYouMean, UserError} from '../errors.js'
import type {HashProgress} from './hash-file.js'
import {inspectGguf} from './inspect-gguf.js'
import {
  MANIFEST_SCHEMA_VERSION,
  MODEL_NAME_PATTERN,
  readManifest,
  writeManifest,
  type ModelManifest,
  type TrainingProvenance,
} from './manifest.js'
import {modelsDirectory} from './models-directory.js'

/** A GGUF in the models folder that no manifest points at. */
export interface UnregisteredModelFile {
  file: string
  path: string
  size: number
}

/** A manifest that could not be read, and why. */
export interface InvalidManifest {
  manifest: string
  error: string
}

/** A registered model as `models list` shows it. */
export type ListedModel = ModelManifest & {
  manifestPath: string
  /** Absolute path of the GGUF. */
  path: string
  /** From a stat only: `models verify` hashes. */
  status: 'ok' | 'missing' | 'size_mismatch'
}

export interface ModelList {
  directory: string
  models: ListedModel[]
  unregistered: UnregisteredModelFile[]
  invalid: InvalidManifest[]
}

/** A model resolved from `--model`: always a path; a name and manifest when it is registered. */
export interface ResolvedModel {
  path: string
  name: string | null
  manifest: ModelManifest | null
  manifestPath: string | null
}

/** The absolute path of a manifest's GGUF. */
export function manifestFilePath(directory: string, manifest: Pick<ModelManifest, 'file'>): string {
  return resolve(directory, manifest.file)
}

/** What is in the models folder: manifests (sorted by name), GGUF files, and unreadable manifests. */
export function scanModelsDirectory(directory: string): {manifests: string[]; ggufFiles: string[]} {
  if (!existsSync(directory)) return {manifests: [], ggufFiles: []}
  const entries = readdirSync(directory, {withFileTypes: true}).filter((entry) => entry.isFile())
  const names = entries.map((entry) => entry.name).sort()
  return {
    manifests: names.filter((name) => name.endsWith('.json')).map((name) => join(directory, name)),
    ggufFiles: names.filter((name) => name.toLowerCase().endsWith('.gguf')).map((name) => join(directory, name)),
  }
}

/** Registry names in the folder (from manifest file names), for did-you-mean. */
function registeredNames(directory: string): string[] {
  return scanModelsDirectory(directory).manifests.map((path) => basename(path, '.json'))
}

/** ConfigError for a name that is not in the registry, with the closest registered name. */
export function unknownModelError(name: string, directory: string): ConfigError {
  const names = registeredNames(directory)
  const guess = didYouMean(name, names)
  const known = names.length > 0 ? `registered: ${names.join(', ')}` : 'no model is registered there'
  return new ConfigError(
    `unknown model "${name}" in ${directory}${guess ? ` — did you mean "${guess}"?` : ` (${known})`}`,
    {
      code: 'MODEL_UNKNOWN',
      suggestions: [
        'invagent models list',
        'Pass the path of a .gguf file instead of a name, or set INVAGENT_MODELS_DIR to the folder that holds your models.',
      ],
    },
  )
}

/** Lists the registry: every manifest, the GGUF files without one, and the manifests that do not validate. */
export function listModels(directory = modelsDirectory()): ModelList {
  const {manifests, ggufFiles} = scanModelsDirectory(directory)
  const models: ListedModel[] = []
  const invalid: InvalidManifest[] = []
  for (const manifestPath of manifests) {
    try {
      const manifest = readManifest(manifestPath)
      const path = manifestFilePath(directory, manifest)
      const size = existsSync(path) ? statSync(path).size : undefined
      models.push({
        ...manifest,
        manifestPath,
        path,
        status: size === undefined ? 'missing' : size === manifest.size ? 'ok' : 'size_mismatch',
      })
    } catch (error) {
      invalid.push({manifest: manifestPath, error: (error as Error).message})
    }
  }
  const registered = new Set(models.map((model) => model.path))
  const unregistered = ggufFiles
    .filter((path) => !registered.has(path))
    .map((path) => ({file: basename(path), path, size: statSync(path).size}))
  return {directory, models, unregistered, invalid}
}

/** A registry name from a file name: `Phi-3-mini-4k-instruct-q4.gguf` → `Phi-3-mini-4k-instruct-q4`. */
export function modelNameFromFile(path: string): string {
  const name = basename(path)
    .replace(/\.gguf$/i, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 128)
  return name === '' ? 'model' : name
}

export interface RegisterModelOptions {
  /** Registry name; defaults to the file name without `.gguf`. */
  name?: string
  /** The model this one was trained or converted from. */
  baseModel?: string | null
  /** sha256 of the training dataset. */
  datasetSha256?: string | null
  /** The command line that created the model (see currentCommandLine). */
  createdBy: string
  /** How a fine-tuned model was trained. */
  training?: TrainingProvenance | null
  /** Registry name of the model this one derives from; must be registered. */
  parent?: string | null
  /** Replace a manifest of the same name that describes another file. */
  overwrite?: boolean
  /** The models folder; defaults to modelsDirectory(). */
  directory?: string
  onProgress?: HashProgress
  signal?: AbortSignal
  now?: Date
}

export interface RegisteredModel {
  manifest: ModelManifest
  manifestPath: string
  path: string
}

/**
 * Registers a GGUF: reads its header (architecture, quantization, parameters), hashes it, and
 * writes `models/<name>.json`. Called by `models add` and by the commands that produce models
 * (quantize, train). Registering the same file under the same name again refreshes its manifest;
 * a name already taken by another file needs `overwrite`.
 */
export async function registerModel(ggufPath: string, options: RegisterModelOptions): Promise<RegisteredModel> {
  const directory = options.directory ?? modelsDirectory()
  const path = resolve(ggufPath)
  const name = options.name ?? modelNameFromFile(path)
  if (!MODEL_NAME_PATTERN.test(name)) {
    throw new UserError(
      `invalid model name "${name}": use letters, digits, ".", "_" and "-", starting with a letter or digit (at most 128 characters).`,
      {code: 'MODEL_NAME_INVALID'},
    )
  }
  if (options.datasetSha256 != null && !/^[0-9a-f]{64}$/.test(options.datasetSha256)) {
    throw new UserError(`invalid dataset sha256 "${options.datasetSha256}": expected 64 lowercase hex digits.`, {
      code: 'DATASET_SHA_INVALID',
    })
  }
  if (options.parent != null && !existsSync(join(directory, `${options.parent}.json`)))
    throw unknownModelError(options.parent, directory)

  const inspection = await inspectGguf(path, {onProgress: options.onProgress, signal: options.signal})
  const relativePath = relative(directory, path)
  const file =
    relativePath !== '' && !relativePath.startsWith('..') && !isAbsolute(relativePath)
      ? relativePath.split(sep).join('/')
      : path
  const manifestPath = join(directory, `${name}.json`)
  if (existsSync(manifestPath) && !options.overwrite) {
    let existing: ModelManifest | undefined
    try {
      existing = readManifest(manifestPath)
    } catch {
      existing = undefined
    }
    if (!existing || manifestFilePath(directory, existing) !== path || existing.sha256 !== inspection.sha256) {
      throw new UserError(
        `a model named "${name}" is already registered${existing ? ` for ${existing.file} (sha256 ${existing.sha256.slice(0, 12)}…)` : ''}: ${manifestPath}.`,
        {
          code: 'MODEL_EXISTS',
          suggestions: ['Choose another name (--name), or replace the manifest (--force).'],
        },
      )
    }
  }
  const manifest: ModelManifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    name,
    file,
    sha256: inspection.sha256!,
    size: inspection.fileSize,
    architecture: inspection.architecture,
    quantization: inspection.quantization,
    parameterCount: inspection.parameterCount,
    baseModel: options.baseModel ?? null,
    datasetSha256: options.datasetSha256 ?? null,
    parent: options.parent ?? null,
    createdBy: options.createdBy,
    createdAt: (options.now ?? new Date()).toISOString(),
    ...(options.training ? {training: options.training} : {}),
  }
  try {
    mkdirSync(directory, {recursive: true})
  } catch (error) {
    throw new ConfigError(`cannot create the models folder ${directory}: ${(error as Error).message}`, {
      code: 'MODELS_DIR_UNWRITABLE',
      cause: error,
    })
  }
  writeManifest(manifestPath, manifest)
  return {manifest, manifestPath, path}
}

/** Whether `--model` looks like a path rather than a registry name. */
function looksLikePath(value: string): boolean {
  return value.includes('/') || value.includes('\\') || /\.gguf$/i.test(value) || !MODEL_NAME_PATTERN.test(value)
}

/**
 * What `--model` means: a registry name (`phi3-q4`) or a path to a GGUF (`./x.gguf`, anything
 * with a slash or ending in .gguf). A name's manifest must validate, its file must exist and have
 * the recorded size (full hashing is `models verify`'s job). A path is returned with the manifest
 * that points at it, when there is one. Unknown names throw ConfigError with a did-you-mean.
 */
export function resolveModel(nameOrPath: string, options: {directory?: string; cwd?: string} = {}): ResolvedModel {
  const directory = options.directory ?? modelsDirectory()
  const cwd = options.cwd ?? process.cwd()
  const asPath = resolve(cwd, nameOrPath)
  const byPath = (): ResolvedModel => {
    if (!existsSync(asPath)) {
      throw new UserError(`no such model file: ${asPath}`, {
        code: 'MODEL_FILE_MISSING',
        suggestions: ['invagent models list'],
      })
    }
    for (const manifestPath of scanModelsDirectory(directory).manifests) {
      try {
        const manifest = readManifest(manifestPath)
        if (manifestFilePath(directory, manifest) === asPath)
          return {path: asPath, name: manifest.name, manifest, manifestPath}
      } catch {
        // An unreadable manifest of another model does not stop this one; `models verify` reports it.
      }
    }
    return {path: asPath, name: null, manifest: null, manifestPath: null}
  }
  if (looksLikePath(nameOrPath)) return byPath()

  const manifestPath = join(directory, `${nameOrPath}.json`)
  if (!existsSync(manifestPath)) {
    if (existsSync(asPath) && statSync(asPath).isFile()) return byPath()
    throw unknownModelError(nameOrPath, directory)
  }
  const manifest = readManifest(manifestPath)
  const path = manifestFilePath(directory, manifest)
  if (!existsSync(path)) {
    throw new ConfigError(`model "${manifest.name}": its file ${path} is missing.`, {
      code: 'MODEL_FILE_MISSING',
      suggestions: ['invagent models verify', `Restore the file, or remove ${manifestPath}.`],
    })
  }
  const size = statSync(path).size
  if (size !== manifest.size) {
    throw new ConfigError(
      `model "${manifest.name}": ${path} has ${size} bytes, its manifest says ${manifest.size} (changed or truncated).`,
      {
        code: 'MODEL_SIZE_MISMATCH',
        suggestions: ['invagent models verify'],
      },
    )
  }
  return {path, name: manifest.name, manifest, manifestPath}
}
