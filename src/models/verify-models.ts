import {existsSync, statSync} from 'node:fs'
import {basename, join} from 'node:path'

import {sha256File, type HashProgress} from './hash-file.js'
import {inspectGguf} from './inspect-gguf.js'
import {readManifest} from './manifest.js'
import {modelsDirectory} from './models-directory.js'
import {
  listModels,
  manifestFilePath,
  scanModelsDirectory,
  unknownModelError,
  type UnregisteredModelFile,
} from './registry.js'

export type VerifyCheck = 'manifest' | 'file' | 'size' | 'gguf' | 'metadata' | 'sha256'

export interface ModelVerification {
  name: string
  manifest: string
  /** Absolute path of the GGUF; null when the manifest could not be read. */
  file: string | null
  ok: boolean
  problems: Array<{check: VerifyCheck; message: string}>
}

export interface VerifyModelsResult {
  directory: string
  ok: boolean
  models: ModelVerification[]
  /** GGUF files without a manifest: reported, not a failure. */
  unregistered: UnregisteredModelFile[]
}

/** Verifies one manifest: it validates, its file exists with the recorded size, the GGUF header reads and agrees, and the sha256 matches. */
async function verifyOne(
  directory: string,
  manifestPath: string,
  progressFor?: (name: string) => HashProgress | undefined,
): Promise<ModelVerification> {
  const name = basename(manifestPath, '.json')
  const problems: ModelVerification['problems'] = []
  const result = (file: string | null): ModelVerification => ({
    name,
    manifest: manifestPath,
    file,
    ok: problems.length === 0,
    problems,
  })
  let manifest
  try {
    manifest = readManifest(manifestPath)
  } catch (error) {
    problems.push({check: 'manifest', message: (error as Error).message})
    return result(null)
  }
  const path = manifestFilePath(directory, manifest)
  if (!existsSync(path)) {
    problems.push({check: 'file', message: `${path} does not exist`})
    return result(path)
  }
  const size = statSync(path).size
  if (size !== manifest.size) {
    // A different size is already a mismatch: hashing gigabytes would say nothing more.
    problems.push({check: 'size', message: `${path} has ${size} bytes, the manifest says ${manifest.size}`})
    return result(path)
  }
  try {
    const header = await inspectGguf(path, {hash: false})
    if (header.architecture !== manifest.architecture)
      problems.push({
        check: 'metadata',
        message: `architecture is ${header.architecture}, the manifest says ${manifest.architecture}`,
      })
    if (header.quantization !== manifest.quantization)
      problems.push({
        check: 'metadata',
        message: `quantization is ${header.quantization}, the manifest says ${manifest.quantization}`,
      })
  } catch (error) {
    problems.push({check: 'gguf', message: (error as Error).message})
  }
  const sha256 = await sha256File(path, {onProgress: progressFor?.(name)})
  if (sha256 !== manifest.sha256)
    problems.push({check: 'sha256', message: `sha256 is ${sha256}, the manifest says ${manifest.sha256}`})
  return result(path)
}

/**
 * Verifies every manifest in the models folder (or only `name`): see verifyOne. `ok` is false when
 * any model has a problem. GGUF files without a manifest are listed but do not fail verification.
 */
export async function verifyModels(
  options: {directory?: string; name?: string; progressFor?: (name: string) => HashProgress | undefined} = {},
): Promise<VerifyModelsResult> {
  const directory = options.directory ?? modelsDirectory()
  let {manifests} = scanModelsDirectory(directory)
  if (options.name !== undefined) {
    const wanted = join(directory, `${options.name}.json`)
    if (!manifests.includes(wanted)) throw unknownModelError(options.name, directory)
    manifests = [wanted]
  }
  const models: ModelVerification[] = []
  for (const manifestPath of manifests) models.push(await verifyOne(directory, manifestPath, options.progressFor))
  return {
    directory,
    ok: models.every((model) => model.ok),
    models,
    unregistered: options.name === undefined ? listModels(directory).unregistered : [],
  }
}
