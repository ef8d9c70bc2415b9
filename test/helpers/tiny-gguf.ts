import {createHash} from 'node:crypto'
import {closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync} from 'node:fs'
import {dirname} from 'node:path'

import {Random} from '../../src/util/random.js'

/*
 * A GGUF v3 writer for tiny random-weight models that llama.cpp and node-llama-cpp load and run,
 * so that tests exercise real loading, tokenization, chat templates and grammars without a
 * download (DESIGN §7).
 *
 * File layout (little-endian), as node-llama-cpp's reader (dist/gguf/parser/GgufV2Parser.js) and
 * ggml's gguf.cpp read it:
 *   "GGUF" · u32 version (3) · u64 tensor count · u64 metadata count
 *   metadata: string key · u32 value type · value   (string = u64 byte length + UTF-8 bytes;
 *             array = u32 element type + u64 count + elements)
 *   tensor infos: string name · u32 n_dims · u64 dims[n_dims] (ne0 first: the row length) ·
 *                 u32 ggml type · u64 offset (relative to the data section)
 *   zero padding to `general.alignment` (32), then the tensor data, each tensor padded to the
 *   alignment. ggml insists each offset is exactly the padded sum of the tensors before it.
 */

/** GGUF metadata value types (gguf.h). */
const ValueType = {Uint32: 4, Int32: 5, Float32: 6, Bool: 7, String: 8, Array: 9} as const
type ValueType = (typeof ValueType)[keyof typeof ValueType]

/** ggml tensor types used here. */
const GGML_TYPE = {f32: 0, f16: 1} as const

/** llama.cpp token types (tokenizer.ggml.token_type). */
export const TOKEN_TYPE = {normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6} as const

/** Phi-3-mini-instruct's chat template (tokenizer_config.json), whose markers llama.cpp detects as "phi3". */
export const PHI3_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}" +
  "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}" +
  "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}" +
  "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"

export interface TinyGgufOptions {
  /** `tiny` (default): loads and generates in milliseconds. `quantizable`: every matrix row a multiple of 256, so llama-quantize can apply K-quants (Q4_K_M). */
  preset?: 'tiny' | 'quantizable'
  embeddingLength?: number
  feedForwardLength?: number
  blockCount?: number
  headCount?: number
  headCountKv?: number
  contextLength?: number
  /** Weight type of the 2-D matrices; norms stay f32 as in converted models. Default f32. */
  tensorType?: 'f32' | 'f16'
  /** Seed of the weights: the same options give a byte-identical file. Default 1. */
  seed?: number
  /** general.name. Default "invagent-tiny" ("invagent-tiny-quantizable"). */
  name?: string
  /** tokenizer.chat_template; null leaves it out. Default Phi-3's template. */
  chatTemplate?: string | null
  /** The vocabulary is padded with unused tokens to a multiple of this. Default 32. */
  vocabularyMultiple?: number
  /** Standard deviation of the attention and feed-forward matrices. Default 0.02 (token embeddings get 1 and the output layer 1/√embedding, so logits are not flat). */
  weightStd?: number
}

/** What `writeTinyGguf` wrote. */
export interface TinyGgufInfo {
  path: string
  sha256: string
  fileSize: number
  parameterCount: number
  tensorCount: number
  vocabularySize: number
  fileType: 'ALL_F32' | 'MOSTLY_F16'
  hyperparameters: Required<
    Pick<
      TinyGgufOptions,
      'embeddingLength' | 'feedForwardLength' | 'blockCount' | 'headCount' | 'headCountKv' | 'contextLength'
    >
  >
  /** Token ids of the special tokens. */
  tokens: {
    unk: number
    bos: number
    eos: number
    eot: number
    user: number
    assistant: number
    system: number
    end: number
    space: number
    firstByte: number
  }
}

const PRESETS = {
  tiny: {embeddingLength: 64, feedForwardLength: 128, blockCount: 2, headCount: 4, headCountKv: 2, contextLength: 4096},
  quantizable: {
    embeddingLength: 256,
    feedForwardLength: 768,
    blockCount: 2,
    headCount: 4,
    headCountKv: 2,
    contextLength: 4096,
  },
} as const

/**
 * The vocabulary: SentencePiece-style, byte level. Every UTF-8 byte has its `<0xXX>` token, so any
 * text tokenizes (llama.cpp's SPM tokenizer falls back to byte tokens for every character that
 * has no token of its own). "▁" (U+2581) is the one normal token: SPM replaces spaces with it and
 * detokenizes it back to a space, which a byte sequence would not, so without it text with spaces
 * would not round-trip. Phi-3's chat markers are control tokens, never produced from plain text.
 */
function buildVocabulary(multiple: number): {
  tokens: string[]
  types: number[]
  scores: number[]
  ids: TinyGgufInfo['tokens']
} {
  const tokens: string[] = []
  const types: number[] = []
  const scores: number[] = []
  const add = (text: string, type: number, score = 0) => {
    tokens.push(text)
    types.push(type)
    scores.push(score)
    return tokens.length - 1
  }
  const unk = add('<unk>', TOKEN_TYPE.unknown)
  const bos = add('<s>', TOKEN_TYPE.control)
  add('</s>', TOKEN_TYPE.control)
  const firstByte = tokens.length
  for (let byte = 0; byte < 256; byte++) add(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`, TOKEN_TYPE.byte)
  const space = add('▁', TOKEN_TYPE.normal, -1)
  const eos = add('<|endoftext|>', TOKEN_TYPE.control)
  const assistant = add('<|assistant|>', TOKEN_TYPE.control)
  const end = add('<|end|>', TOKEN_TYPE.control)
  const user = add('<|user|>', TOKEN_TYPE.control)
  const system = add('<|system|>', TOKEN_TYPE.control)
  for (let index = 0; tokens.length % multiple !== 0; index++) add(`<|placeholder${index}|>`, TOKEN_TYPE.unused)
  return {tokens, types, scores, ids: {unk, bos, eos, eot: end, user, assistant, system, end, space, firstByte}}
}

/** Little-endian binary builder for the header. */
class HeaderWriter {
  private chunks: Buffer[] = []
  length = 0

  private push(buffer: Buffer): void {
    this.chunks.push(buffer)
    this.length += buffer.length
  }

  u32(value: number): void {
    const buffer = Buffer.alloc(4)
    buffer.writeUInt32LE(value)
    this.push(buffer)
  }

  i32(value: number): void {
    const buffer = Buffer.alloc(4)
    buffer.writeInt32LE(value)
    this.push(buffer)
  }

  u64(value: number): void {
    const buffer = Buffer.alloc(8)
    buffer.writeBigUInt64LE(BigInt(value))
    this.push(buffer)
  }

  f32(value: number): void {
    const buffer = Buffer.alloc(4)
    buffer.writeFloatLE(value)
    this.push(buffer)
  }

  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8')
    this.u64(bytes.length)
    this.push(bytes)
  }

  bytes(buffer: Buffer): void {
    this.push(buffer)
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks)
  }
}

type MetadataValue =
  | {type: typeof ValueType.Uint32 | typeof ValueType.Int32 | typeof ValueType.Float32; value: number}
  | {type: typeof ValueType.Bool; value: boolean}
  | {type: typeof ValueType.String; value: string}
  | {type: typeof ValueType.Array; elementType: typeof ValueType.String; value: string[]}
  | {type: typeof ValueType.Array; elementType: typeof ValueType.Int32 | typeof ValueType.Float32; value: number[]}

const u32 = (value: number): MetadataValue => ({type: ValueType.Uint32, value})
const f32 = (value: number): MetadataValue => ({type: ValueType.Float32, value})
const str = (value: string): MetadataValue => ({type: ValueType.String, value})
const bool = (value: boolean): MetadataValue => ({type: ValueType.Bool, value})

function writeScalar(out: HeaderWriter, type: ValueType, value: number | string | boolean): void {
  switch (type) {
    case ValueType.Uint32:
      return out.u32(value as number)
    case ValueType.Int32:
      return out.i32(value as number)
    case ValueType.Float32:
      return out.f32(value as number)
    case ValueType.Bool:
      return out.bytes(Buffer.from([value ? 1 : 0]))
    case ValueType.String:
      return out.string(value as string)
    default:
      throw new Error(`unsupported scalar type ${type}`)
  }
}

function writeMetadata(out: HeaderWriter, key: string, entry: MetadataValue): void {
  out.string(key)
  out.u32(entry.type)
  if (entry.type === ValueType.Array) {
    out.u32(entry.elementType)
    out.u64(entry.value.length)
    for (const element of entry.value) writeScalar(out, entry.elementType, element)
  } else {
    writeScalar(out, entry.type, entry.value)
  }
}

/** IEEE 754 binary16 from a float, rounding to nearest even (tiny weights never overflow). */
function toHalf(value: number): number {
  const f32Buffer = new Float32Array([value])
  const bits = new Uint32Array(f32Buffer.buffer)[0]
  const sign = (bits >>> 16) & 0x8000
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15
  let mantissa = bits & 0x7fffff
  if (exponent <= 0) {
    if (exponent < -10) return sign
    mantissa = (mantissa | 0x800000) >>> (1 - exponent)
    if (mantissa & 0x1000) mantissa += 0x2000
    return sign | (mantissa >>> 13)
  }
  if (exponent >= 31) return sign | 0x7c00
  let half = sign | (exponent << 10) | (mantissa >>> 13)
  const rest = mantissa & 0x1fff
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1
  return half
}

interface TensorSpec {
  name: string
  /** ggml order: ne0 (row length) first. */
  dims: number[]
  type: 'f32' | 'f16'
  fill: 'ones' | {std: number}
}

function tensorBytes(spec: TensorSpec, random: Random): Buffer {
  const count = spec.dims.reduce((product, dimension) => product * dimension, 1)
  const values = new Float32Array(count)
  if (spec.fill === 'ones') values.fill(1)
  else {
    // Uniform with the requested standard deviation: std of U(-a, a) is a/√3.
    const half = spec.fill.std * Math.sqrt(3)
    for (let index = 0; index < count; index++) values[index] = (random.float() * 2 - 1) * half
  }
  if (spec.type === 'f32') return Buffer.from(values.buffer)
  const halves = new Uint16Array(count)
  for (let index = 0; index < count; index++) halves[index] = toHalf(values[index])
  return Buffer.from(halves.buffer)
}

const ALIGNMENT = 32
const pad = (length: number) => (ALIGNMENT - (length % ALIGNMENT)) % ALIGNMENT

/**
 * Writes a tiny llama-architecture GGUF v3 with seeded random weights, a byte-level SentencePiece
 * vocabulary, Phi-3's chat tokens and chat template. The same options give a byte-identical file.
 * The file is written under a temporary name and renamed into place.
 */
export function writeTinyGguf(path: string, options: TinyGgufOptions = {}): TinyGgufInfo {
  const preset = options.preset ?? 'tiny'
  const hyperparameters = {
    embeddingLength: options.embeddingLength ?? PRESETS[preset].embeddingLength,
    feedForwardLength: options.feedForwardLength ?? PRESETS[preset].feedForwardLength,
    blockCount: options.blockCount ?? PRESETS[preset].blockCount,
    headCount: options.headCount ?? PRESETS[preset].headCount,
    headCountKv: options.headCountKv ?? PRESETS[preset].headCountKv,
    contextLength: options.contextLength ?? PRESETS[preset].contextLength,
  }
  const {embeddingLength: nEmbd, feedForwardLength: nFf, blockCount, headCount, headCountKv} = hyperparameters
  if (nEmbd % headCount !== 0) throw new Error(`embeddingLength ${nEmbd} must be a multiple of headCount ${headCount}`)
  if (headCount % headCountKv !== 0)
    throw new Error(`headCount ${headCount} must be a multiple of headCountKv ${headCountKv}`)
  const headDimension = nEmbd / headCount
  if (headDimension % 2 !== 0) throw new Error(`the head dimension ${headDimension} must be even for RoPE`)
  const tensorType = options.tensorType ?? 'f32'
  const vocabulary = buildVocabulary(options.vocabularyMultiple ?? 32)
  const nVocab = vocabulary.tokens.length
  const std = options.weightStd ?? 0.02

  const matrix = (name: string, ne0: number, ne1: number, tensorStd = std): TensorSpec => ({
    name,
    dims: [ne0, ne1],
    type: tensorType,
    fill: {std: tensorStd},
  })
  const norm = (name: string): TensorSpec => ({name, dims: [nEmbd], type: 'f32', fill: 'ones'})
  const tensors: TensorSpec[] = [matrix('token_embd.weight', nEmbd, nVocab, 1)]
  for (let block = 0; block < blockCount; block++) {
    tensors.push(
      norm(`blk.${block}.attn_norm.weight`),
      matrix(`blk.${block}.attn_q.weight`, nEmbd, nEmbd),
      matrix(`blk.${block}.attn_k.weight`, nEmbd, headDimension * headCountKv),
      matrix(`blk.${block}.attn_v.weight`, nEmbd, headDimension * headCountKv),
      matrix(`blk.${block}.attn_output.weight`, nEmbd, nEmbd),
      norm(`blk.${block}.ffn_norm.weight`),
      matrix(`blk.${block}.ffn_gate.weight`, nEmbd, nFf),
      matrix(`blk.${block}.ffn_up.weight`, nEmbd, nFf),
      matrix(`blk.${block}.ffn_down.weight`, nFf, nEmbd),
    )
  }
  tensors.push(norm('output_norm.weight'), matrix('output.weight', nEmbd, nVocab, 1 / Math.sqrt(nEmbd)))

  const fileType = tensorType === 'f32' ? 'ALL_F32' : 'MOSTLY_F16'
  const metadata: Array<[string, MetadataValue]> = [
    ['general.architecture', str('llama')],
    ['general.type', str('model')],
    ['general.name', str(options.name ?? (preset === 'tiny' ? 'invagent-tiny' : `invagent-tiny-${preset}`))],
    ['general.file_type', u32(tensorType === 'f32' ? 0 : 1)],
    ['general.alignment', u32(ALIGNMENT)],
    ['llama.vocab_size', u32(nVocab)],
    ['llama.context_length', u32(hyperparameters.contextLength)],
    ['llama.embedding_length', u32(nEmbd)],
    ['llama.block_count', u32(blockCount)],
    ['llama.feed_forward_length', u32(nFf)],
    ['llama.attention.head_count', u32(headCount)],
    ['llama.attention.head_count_kv', u32(headCountKv)],
    ['llama.rope.dimension_count', u32(headDimension)],
    ['llama.rope.freq_base', f32(10_000)],
    ['llama.attention.layer_norm_rms_epsilon', f32(1e-5)],
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.pre', str('default')],
    ['tokenizer.ggml.tokens', {type: ValueType.Array, elementType: ValueType.String, value: vocabulary.tokens}],
    ['tokenizer.ggml.scores', {type: ValueType.Array, elementType: ValueType.Float32, value: vocabulary.scores}],
    ['tokenizer.ggml.token_type', {type: ValueType.Array, elementType: ValueType.Int32, value: vocabulary.types}],
    ['tokenizer.ggml.bos_token_id', u32(vocabulary.ids.bos)],
    ['tokenizer.ggml.eos_token_id', u32(vocabulary.ids.eos)],
    ['tokenizer.ggml.eot_token_id', u32(vocabulary.ids.eot)],
    ['tokenizer.ggml.unknown_token_id', u32(vocabulary.ids.unk)],
    ['tokenizer.ggml.padding_token_id', u32(vocabulary.ids.eos)],
    ['tokenizer.ggml.add_bos_token', bool(false)],
    ['tokenizer.ggml.add_eos_token', bool(false)],
    // SPM's default is to prepend a space; without it, detokenize(tokenize(text)) === text.
    ['tokenizer.ggml.add_space_prefix', bool(false)],
  ]
  const chatTemplate = options.chatTemplate === undefined ? PHI3_CHAT_TEMPLATE : options.chatTemplate
  if (chatTemplate !== null) metadata.push(['tokenizer.chat_template', str(chatTemplate)])

  const header = new HeaderWriter()
  header.bytes(Buffer.from('GGUF', 'ascii'))
  header.u32(3)
  header.u64(tensors.length)
  header.u64(metadata.length)
  for (const [key, value] of metadata) writeMetadata(header, key, value)
  let offset = 0
  let parameterCount = 0
  const elementSize = {f32: 4, f16: 2}
  for (const tensor of tensors) {
    const count = tensor.dims.reduce((product, dimension) => product * dimension, 1)
    parameterCount += count
    header.string(tensor.name)
    header.u32(tensor.dims.length)
    for (const dimension of tensor.dims) header.u64(dimension)
    header.u32(GGML_TYPE[tensor.type])
    header.u64(offset)
    const size = count * elementSize[tensor.type]
    offset += size + pad(size)
  }
  header.bytes(Buffer.alloc(pad(header.length)))

  mkdirSync(dirname(path), {recursive: true})
  const temporary = `${path}.${process.pid}.partial`
  const hash = createHash('sha256')
  const descriptor = openSync(temporary, 'w')
  let fileSize = 0
  const write = (buffer: Buffer) => {
    writeSync(descriptor, buffer)
    hash.update(buffer)
    fileSize += buffer.length
  }
  try {
    try {
      write(header.toBuffer())
      const random = new Random(options.seed ?? 1)
      for (const tensor of tensors) {
        const data = tensorBytes(tensor, random)
        write(data)
        if (pad(data.length) > 0) write(Buffer.alloc(pad(data.length)))
      }
    } finally {
      closeSync(descriptor)
    }
    renameSync(temporary, path)
  } catch (error) {
    rmSync(temporary, {force: true})
    throw error
  }
  return {
    path,
    sha256: hash.digest('hex'),
    fileSize,
    parameterCount,
    tensorCount: tensors.length,
    vocabularySize: nVocab,
    fileType,
    hyperparameters,
    tokens: vocabulary.ids,
  }
}
