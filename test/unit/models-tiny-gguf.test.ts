import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {readGgufFileInfo} from 'node-llama-cpp'
import {describe, expect, it} from 'vitest'

import {sha256OfFile, temporaryDirectory} from '../helpers/cli.js'
import {PHI3_CHAT_TEMPLATE, TOKEN_TYPE, writeTinyGguf} from '../helpers/tiny-gguf.js'

/** IEEE 754 binary16 → number, to read back the f16 writer's output independently of it. */
function fromHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >>> 10) & 0x1f
  const mantissa = bits & 0x3ff
  if (exponent === 0) return sign * 2 ** -14 * (mantissa / 1024)
  if (exponent === 31) return mantissa ? Number.NaN : sign * Infinity
  return sign * 2 ** (exponent - 15) * (1 + mantissa / 1024)
}

describe('writeTinyGguf', () => {
  it('writes the same bytes for the same options, and other bytes for another seed', () => {
    const directory = temporaryDirectory()
    const a = writeTinyGguf(join(directory, 'a.gguf'), {seed: 5})
    const b = writeTinyGguf(join(directory, 'b.gguf'), {seed: 5})
    const c = writeTinyGguf(join(directory, 'c.gguf'), {seed: 6})
    expect(a.sha256).toBe(b.sha256)
    expect(a.sha256).toBe(sha256OfFile(a.path))
    expect(c.sha256).not.toBe(a.sha256)
    expect(readFileSync(a.path).length).toBe(a.fileSize)
  })

  it('writes every metadata key llama.cpp needs for a llama model, with the types it expects', async () => {
    const info = writeTinyGguf(join(temporaryDirectory(), 'tiny.gguf'))
    const file = await readGgufFileInfo(info.path, {sourceType: 'filesystem'})
    expect(file.version).toBe(3)
    expect(file.metadata.general).toMatchObject({
      architecture: 'llama',
      file_type: 0,
      alignment: 32,
      name: 'invagent-tiny',
    })
    expect(file.metadata.llama).toMatchObject({
      vocab_size: info.vocabularySize,
      context_length: 4096,
      embedding_length: 64,
      block_count: 2,
      feed_forward_length: 128,
      attention: {head_count: 4, head_count_kv: 2},
      rope: {dimension_count: 16, freq_base: 10_000},
    })
    expect(file.metadata.llama?.attention.layer_norm_rms_epsilon).toBeCloseTo(1e-5, 10)
    const {ggml} = file.metadata.tokenizer
    expect(ggml.model).toBe('llama')
    expect(ggml.tokens).toHaveLength(info.vocabularySize)
    expect(ggml.scores).toHaveLength(info.vocabularySize)
    expect(ggml.token_type).toHaveLength(info.vocabularySize)
    expect(info.vocabularySize % 32).toBe(0)
    expect(file.metadata.tokenizer.chat_template).toBe(PHI3_CHAT_TEMPLATE)
    expect([ggml.bos_token_id, ggml.eos_token_id, ggml.eot_token_id]).toEqual([
      info.tokens.bos,
      info.tokens.eos,
      info.tokens.eot,
    ])
  })

  it('has a byte token for every byte, Phi-3 chat markers as control tokens, and unique token texts', async () => {
    const info = writeTinyGguf(join(temporaryDirectory(), 'tiny.gguf'))
    const {ggml} = (await readGgufFileInfo(info.path)).metadata.tokenizer
    for (let byte = 0; byte < 256; byte++) {
      const id = info.tokens.firstByte + byte
      expect(ggml.tokens[id]).toBe(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`)
      expect(ggml.token_type[id]).toBe(TOKEN_TYPE.byte)
    }
    for (const marker of ['<s>', '</s>', '<|endoftext|>', '<|system|>', '<|user|>', '<|assistant|>', '<|end|>']) {
      expect(ggml.token_type[ggml.tokens.indexOf(marker)], marker).toBe(TOKEN_TYPE.control)
    }
    expect(ggml.tokens[info.tokens.space]).toBe('▁')
    expect(new Set(ggml.tokens).size).toBe(ggml.tokens.length)
  })

  it('lays tensors out aligned and back to back, as ggml requires, and counts parameters', async () => {
    const info = writeTinyGguf(join(temporaryDirectory(), 'tiny.gguf'))
    const file = await readGgufFileInfo(info.path)
    const tensors = file.tensorInfo!
    expect(tensors).toHaveLength(info.tensorCount)
    expect(file.infoEndOffset! % 32).toBe(0)
    let expectedOffset = 0
    let parameters = 0
    for (const tensor of tensors) {
      expect(tensor.offset, tensor.name).toBe(expectedOffset)
      const elements = tensor.dimensions.reduce<number>((product, dimension) => product * Number(dimension), 1)
      parameters += elements
      expectedOffset += Math.ceil((elements * 4) / 32) * 32
    }
    expect(file.infoEndOffset! + expectedOffset).toBe(info.fileSize)
    expect(parameters).toBe(info.parameterCount)
  })

  it('makes every matrix row a multiple of 256 in the quantizable preset, so K-quants apply', async () => {
    const info = writeTinyGguf(join(temporaryDirectory(), 'q.gguf'), {preset: 'quantizable'})
    const matrices = (await readGgufFileInfo(info.path)).tensorInfo!.filter((tensor) => tensor.dimensions.length === 2)
    expect(matrices.length).toBe(2 + 7 * info.hyperparameters.blockCount)
    for (const tensor of matrices) expect(Number(tensor.dimensions[0]) % 256, tensor.name).toBe(0)
    expect(info.hyperparameters).toMatchObject({embeddingLength: 256, feedForwardLength: 768})
  })

  it('writes f16 matrices that round the f32 weights of the same seed, and norms in f32', async () => {
    const directory = temporaryDirectory()
    const full = writeTinyGguf(join(directory, 'f32.gguf'), {seed: 3})
    const half = writeTinyGguf(join(directory, 'f16.gguf'), {seed: 3, tensorType: 'f16'})
    expect(half.fileType).toBe('MOSTLY_F16')
    const fullInfo = await readGgufFileInfo(full.path)
    const halfInfo = await readGgufFileInfo(half.path)
    expect(halfInfo.metadata.general.file_type).toBe(1)
    const fullBytes = readFileSync(full.path)
    const halfBytes = readFileSync(half.path)
    for (const name of ['token_embd.weight', 'blk.1.ffn_down.weight']) {
      const a = fullInfo.tensorInfo!.find((tensor) => tensor.name === name)!
      const b = halfInfo.tensorInfo!.find((tensor) => tensor.name === name)!
      expect(b.ggmlType).toBe(1)
      for (let index = 0; index < 500; index++) {
        const value = fullBytes.readFloatLE(Number(a.fileOffset) + index * 4)
        const rounded = fromHalf(halfBytes.readUInt16LE(Number(b.fileOffset) + index * 2))
        expect(Math.abs(rounded - value)).toBeLessThanOrEqual(Math.abs(value) * 2 ** -11 + 2 ** -24)
      }
    }
    expect(halfInfo.tensorInfo!.find((tensor) => tensor.name === 'output_norm.weight')!.ggmlType).toBe(0)
  })

  it('rejects shapes llama.cpp could not run', () => {
    const path = join(temporaryDirectory(), 'x.gguf')
    expect(() => writeTinyGguf(path, {embeddingLength: 60, headCount: 8})).toThrow('multiple of headCount')
    expect(() => writeTinyGguf(path, {headCount: 4, headCountKv: 3})).toThrow('multiple of headCountKv')
  })
})
