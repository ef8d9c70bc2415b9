import {open, stat} from 'node:fs/promises'

import {UserError} from '../errors.js'
import {sha256File, type HashProgress} from './hash-file.js'

/** What a GGUF file's header says about the model, plus the file's size (and sha256 when asked). */
export interface GgufInspection {
  path: string
  fileSize: number
  /** null when hashing was skipped. */
  sha256: string | null
  ggufVersion: number
  architecture: string
  /** general.name, when the file has one. */
  modelName: string | null
  parameterCount: number
  /** The file type without its MOSTLY_/ALL_ prefix (Q4_K_M, F16, F32), or the dominant tensor type when the header has no general.file_type. */
  quantization: string
  /** Number of tensors of each ggml type. */
  tensorTypes: Record<string, number>
  tensorCount: number
  contextLength: number | null
  embeddingLength: number | null
  blockCount: number | null
  vocabularySize: number | null
  /** tokenizer.ggml.model: llama (SentencePiece), gpt2 (BPE), … */
  tokenizer: string | null
  chatTemplate: {present: boolean; firstLine: string | null}
}

/** [block size in elements, bytes per block] of each ggml type (ggml.c type_traits), to find truncated files. */
const GGML_TYPE_LAYOUT: Record<number, [number, number]> = {
  0: [1, 4],
  1: [1, 2],
  2: [32, 18],
  3: [32, 20],
  6: [32, 22],
  7: [32, 24],
  8: [32, 34],
  9: [32, 36],
  10: [256, 84],
  11: [256, 110],
  12: [256, 144],
  13: [256, 176],
  14: [256, 210],
  15: [256, 292],
  16: [256, 66],
  17: [256, 74],
  18: [256, 98],
  19: [256, 50],
  20: [32, 18],
  21: [256, 110],
  22: [256, 82],
  23: [256, 136],
  24: [1, 1],
  25: [1, 2],
  26: [1, 4],
  27: [1, 8],
  28: [1, 8],
  29: [256, 56],
  30: [1, 2],
  34: [256, 54],
  35: [256, 66],
  39: [32, 17],
  40: [64, 36],
  41: [128, 18],
  42: [64, 18],
}

/**
 * Cheap sanity check of the fixed header before node-llama-cpp's parser runs: a wrong magic,
 * or counts that could not fit in the file (a corrupt or foreign file would otherwise send the
 * parser looping over billions of entries).
 */
async function checkFixedHeader(path: string, fileSize: number): Promise<void> {
  const handle = await open(path, 'r')
  const header = Buffer.alloc(24)
  try {
    await handle.read(header, 0, 24, 0)
  } finally {
    await handle.close()
  }
  const magic = header.subarray(0, 4)
  if (fileSize < 4 || magic.toString('latin1') !== 'GGUF') {
    const found =
      fileSize === 0
        ? 'the file is empty'
        : `it starts with ${JSON.stringify(magic.subarray(0, Math.min(4, fileSize)).toString('latin1'))}`
    throw new UserError(`${path} is not a GGUF file: expected the magic "GGUF", ${found}.`, {
      code: 'NOT_GGUF',
      suggestions: [
        "Point at a .gguf model file; convert Hugging Face safetensors with llama.cpp's convert_hf_to_gguf.py.",
      ],
    })
  }
  const version = header.readUInt32LE(4)
  if (version < 2 || version > 3)
    throw new UserError(`${path}: GGUF version ${version} is not supported (expected 2 or 3).`, {code: 'GGUF_VERSION'})
  const tensorCount = header.readBigUInt64LE(8)
  const metadataCount = header.readBigUInt64LE(16)
  // Smallest tensor info: 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset); smallest metadata entry: 8 + 4 + 1.
  if (fileSize < 24 || tensorCount * 24n + metadataCount * 13n > BigInt(fileSize)) {
    throw new UserError(
      `${path}: corrupt or truncated GGUF header: ${tensorCount} tensors and ${metadataCount} metadata entries cannot fit in ${fileSize} bytes.`,
      {code: 'GGUF_CORRUPT'},
    )
  }
}

function quantizationName(
  fileType: unknown,
  tensors: readonly {dimensions: readonly (number | bigint)[]; ggmlType: number}[],
  names: {fileTypes: Record<number, string>; ggmlTypes: Record<number, string>},
): string {
  if (typeof fileType === 'number')
    return names.fileTypes[fileType]?.replace(/^(MOSTLY|ALL)_/, '') ?? `file_type ${fileType}`
  const elementsByType = new Map<number, number>()
  for (const tensor of tensors) {
    if (tensor.dimensions.length < 2) continue
    const elements = tensor.dimensions.reduce<number>((product, dimension) => product * Number(dimension), 1)
    elementsByType.set(tensor.ggmlType, (elementsByType.get(tensor.ggmlType) ?? 0) + elements)
  }
  const [dominant] = [...elementsByType.entries()].sort((a, b) => b[1] - a[1])
  return dominant ? (names.ggmlTypes[dominant[0]] ?? `type ${dominant[0]}`) : 'unknown'
}

/**
 * Reads a GGUF file's header with node-llama-cpp's reader (never the network: filesystem only),
 * checks the tensor data is all there, and hashes the file unless `hash` is false.
 * Throws UserError for a missing, foreign, corrupt or truncated file.
 */
export async function inspectGguf(
  path: string,
  options: {hash?: boolean; onProgress?: HashProgress; signal?: AbortSignal} = {},
): Promise<GgufInspection> {
  let fileSize: number
  try {
    const stats = await stat(path)
    if (!stats.isFile()) throw new UserError(`${path} is not a file.`, {code: 'NOT_A_FILE'})
    fileSize = stats.size
  } catch (error) {
    if (error instanceof UserError) throw error
    throw new UserError(
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}.`,
      {code: 'MODEL_FILE_MISSING', cause: error},
    )
  }
  await checkFixedHeader(path, fileSize)

  // Loaded on demand: node-llama-cpp is heavy, and most commands that resolve a model never read one.
  const {readGgufFileInfo, GgufFileType, GgmlType} = await import('node-llama-cpp')
  let info: Awaited<ReturnType<typeof readGgufFileInfo>>
  try {
    info = await readGgufFileInfo(path, {sourceType: 'filesystem', logWarnings: false, signal: options.signal})
  } catch (error) {
    throw new UserError(`${path}: cannot read the GGUF header: ${(error as Error).message}`, {
      code: 'GGUF_CORRUPT',
      cause: error,
    })
  }
  // node-llama-cpp's reader pads a short read with zeros, so a header cut short still "parses".
  const headerEnd = info.metadataSize + (info.tensorInfoSize ?? 0)
  if (headerEnd > fileSize) {
    throw new UserError(
      `${path} is truncated: its header ends at byte ${headerEnd}, the file has ${fileSize} bytes (an interrupted download or copy?).`,
      {code: 'GGUF_TRUNCATED'},
    )
  }
  const tensors = info.fullTensorInfo ?? info.tensorInfo ?? []
  let dataEnd = 0
  for (const tensor of tensors) {
    const layout = GGML_TYPE_LAYOUT[tensor.ggmlType]
    if (!layout || tensor.filePart !== 1) continue
    const [ne0, ...rest] = tensor.dimensions.map(Number)
    const bytes = Math.ceil(ne0 / layout[0]) * layout[1] * rest.reduce((product, dimension) => product * dimension, 1)
    dataEnd = Math.max(dataEnd, Number(tensor.fileOffset) + bytes)
  }
  if (dataEnd > fileSize) {
    throw new UserError(
      `${path} is truncated: its tensors end at byte ${dataEnd}, the file has ${fileSize} bytes (an interrupted download or copy?).`,
      {code: 'GGUF_TRUNCATED'},
    )
  }

  const metadata = info.metadata
  const architecture = info.architectureMetadata as Record<string, unknown>
  const number = (value: unknown) =>
    typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : null
  const template = typeof metadata.tokenizer?.chat_template === 'string' ? metadata.tokenizer.chat_template : null
  const tensorTypes: Record<string, number> = {}
  for (const tensor of tensors) {
    const name = GgmlType[tensor.ggmlType] ?? `type ${tensor.ggmlType}`
    tensorTypes[name] = (tensorTypes[name] ?? 0) + 1
  }
  const tokens = metadata.tokenizer?.ggml?.tokens

  return {
    path,
    fileSize,
    sha256:
      options.hash === false ? null : await sha256File(path, {onProgress: options.onProgress, signal: options.signal}),
    ggufVersion: info.version,
    architecture: String(metadata.general?.architecture ?? 'unknown'),
    modelName: typeof metadata.general?.name === 'string' ? metadata.general.name : null,
    parameterCount: tensors.reduce(
      (sum, tensor) => sum + tensor.dimensions.reduce<number>((product, dimension) => product * Number(dimension), 1),
      0,
    ),
    quantization: quantizationName(metadata.general?.file_type, tensors, {
      fileTypes: GgufFileType as unknown as Record<number, string>,
      ggmlTypes: GgmlType as unknown as Record<number, string>,
    }),
    tensorTypes,
    tensorCount: Number(info.totalTensorCount),
    contextLength: number(architecture.context_length),
    embeddingLength: number(architecture.embedding_length),
    blockCount: number(architecture.block_count),
    vocabularySize: Array.isArray(tokens) ? tokens.length : number(architecture.vocab_size),
    tokenizer: typeof metadata.tokenizer?.ggml?.model === 'string' ? metadata.tokenizer.ggml.model : null,
    chatTemplate: {present: template !== null, firstLine: template === null ? null : template.split('\n')[0]},
  }
}
