import type {HashProgress} from '../models/hash-file.js'
import {registerModel, resolveModel, type RegisteredModel} from '../models/registry.js'
import {modelNameFromFile} from '../models/registry.js'
import {quantizeModel, type QuantizeOptions, type QuantizeResult} from './quantize.js'

export interface QuantizeAndRegisterOptions extends Omit<QuantizeOptions, 'input'> {
  /** A GGUF path or a registered model's name. */
  input: string
  /** The models folder. */
  directory: string
  /** Registry name of the result (default: the output file's name). */
  name?: string
  /** The command line, for the manifest. */
  createdBy: string
  onHashProgress?: HashProgress
}

export interface QuantizeAndRegisterResult {
  quantize: QuantizeResult
  registered: RegisteredModel
}

/**
 * `invagent quantize`: quantizes a GGUF (a path or a registered name) and registers the result.
 * A registered input becomes the result's parent, and its base model, dataset and training
 * provenance carry over: quantizing does not change where a model came from.
 */
export async function quantizeAndRegister(options: QuantizeAndRegisterOptions): Promise<QuantizeAndRegisterResult> {
  const source = resolveModel(options.input, {directory: options.directory})
  const quantize = await quantizeModel({...options, input: source.path})
  const registered = await registerModel(quantize.output, {
    directory: options.directory,
    name: options.name ?? modelNameFromFile(quantize.output),
    parent: source.name,
    baseModel: source.manifest?.baseModel ?? null,
    datasetSha256: source.manifest?.datasetSha256 ?? null,
    training: source.manifest?.training ?? null,
    createdBy: options.createdBy,
    overwrite: options.overwrite,
    onProgress: options.onHashProgress,
    signal: options.signal,
  })
  return {quantize, registered}
}
