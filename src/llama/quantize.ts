import {existsSync, mkdirSync, renameSync, rmSync, statSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {basename, dirname, join, resolve} from 'node:path'

import {ExternalToolError, UserError} from '../errors.js'
import {inspectGguf, type GgufInspection} from '../models/inspect-gguf.js'
import {runProcess} from '../process/run-process.js'
import {findLlamaBinary, type LlamaBinarySource} from './locate.js'
import {expectedBitsPerWeight, isQuantized, QUANT_TYPES, type QuantTypeName} from './quant-types.js'

/*
 * `invagent quantize`: llama-quantize with the checks it does not do itself. It refuses to
 * quantize an already quantized file again (quality loss) unless asked, writes to a temporary
 * name and renames only a file that passed: it reads as GGUF, has the input's tensor count, is of
 * the requested type, and its size matches the type's bits per weight.
 */

export interface QuantizeOptions {
  input: string
  type: QuantTypeName
  /** Output path; default `<input without -f16/-f32/…>-<type>.gguf` next to the input. */
  out?: string
  /** An importance matrix (llama-imatrix's output). */
  imatrix?: string
  /** Quantize a file that is already quantized (lower quality than starting from 16 bits). */
  allowRequantize?: boolean
  /** Replace an existing output file. */
  overwrite?: boolean
  /** Path of llama-quantize (default: INVAGENT_LLAMA_QUANTIZE, PATH, then `invagent llama build`'s). */
  llamaQuantize?: string
  threads?: number
  signal?: AbortSignal
  /** Tensors done out of the total, as llama-quantize reports them. */
  onProgress?: (done: number, total: number, tensor: string) => void
}

export interface QuantizeResult {
  input: string
  output: string
  type: QuantTypeName
  inputQuantization: string
  inputSize: number
  outputSize: number
  /** Bits per weight over the whole file (header included). */
  bitsPerWeight: number
  expectedBitsPerWeight: {min: number; max: number}
  tensorCount: number
  sha256: string
  seconds: number
  llamaQuantize: {path: string; source: LlamaBinarySource}
}

/** `models/foo-f16.gguf` + Q4_K_M → `models/foo-q4_k_m.gguf`. */
export function defaultQuantizedPath(input: string, type: QuantTypeName): string {
  const stem = basename(input)
    .replace(/\.gguf$/i, '')
    .replace(/[-_.](f16|f32|bf16|fp16|fp32)$/i, '')
  return join(dirname(resolve(input)), `${stem}-${type.toLowerCase()}.gguf`)
}

/** "[  12/  21]  blk.0.ffn_up.weight - …" → 12, 21 and the tensor's name. */
export function parseQuantizeProgress(line: string): {done: number; total: number; tensor: string} | undefined {
  const match = /^\[\s*(\d+)\/\s*(\d+)\]\s+(\S+)/.exec(line)
  return match ? {done: Number(match[1]), total: Number(match[2]), tensor: match[3]} : undefined
}

function bitsPerWeight(inspection: Pick<GgufInspection, 'fileSize' | 'parameterCount'>): number {
  return inspection.parameterCount === 0 ? 0 : (inspection.fileSize * 8) / inspection.parameterCount
}

/** Checks a finished llama-quantize output against its input and the requested type; throws ExternalToolError. */
export function checkQuantizedOutput(
  input: GgufInspection,
  output: GgufInspection,
  type: QuantTypeName,
): {bitsPerWeight: number; expected: {min: number; max: number}} {
  const problems: string[] = []
  if (output.tensorCount !== input.tensorCount)
    problems.push(`it has ${output.tensorCount} tensors, the input ${input.tensorCount}`)
  if (output.quantization !== type) problems.push(`its file type is ${output.quantization}, not ${type}`)
  if (output.architecture !== input.architecture)
    problems.push(`its architecture is ${output.architecture}, the input's ${input.architecture}`)
  const bits = bitsPerWeight(output)
  const expected = expectedBitsPerWeight(type, bitsPerWeight(input))
  if (bits < expected.min || bits > expected.max) {
    problems.push(
      `${bits.toFixed(2)} bits per weight, where ${type} gives ${expected.min.toFixed(2)}–${expected.max.toFixed(2)}`,
    )
  }
  if (problems.length > 0) {
    throw new ExternalToolError(`llama-quantize wrote a ${type} file that does not check out: ${problems.join('; ')}`, {
      command: 'llama-quantize',
      suggestions: [
        'Run `invagent llama build --force` in case the binary is broken, and report the file if it persists.',
      ],
    })
  }
  return {bitsPerWeight: bits, expected}
}

export async function quantizeModel(options: QuantizeOptions): Promise<QuantizeResult> {
  const started = performance.now()
  const input = resolve(options.input)
  const output = resolve(options.out ?? defaultQuantizedPath(input, options.type))
  const spec = QUANT_TYPES[options.type]
  if (output === input)
    throw new UserError(`--out ${output} is the input file: write the quantized model elsewhere.`, {
      code: 'QUANTIZE_SAME_FILE',
    })
  if (existsSync(output) && !options.overwrite) {
    throw new UserError(`${output} already exists.`, {
      code: 'QUANTIZE_OUTPUT_EXISTS',
      suggestions: ['Pass --force to replace it, or --out to write elsewhere.'],
    })
  }
  if (options.imatrix !== undefined && !existsSync(options.imatrix))
    throw new UserError(`--imatrix ${options.imatrix}: no such file.`, {code: 'IMATRIX_MISSING'})
  if ('needsImatrix' in spec && spec.needsImatrix && options.imatrix === undefined) {
    throw new UserError(`${options.type} needs an importance matrix: without one its quality collapses.`, {
      code: 'IMATRIX_REQUIRED',
      suggestions: [
        "Make one with llama-imatrix on text like the model's tasks and pass --imatrix FILE, or choose Q4_K_M.",
      ],
    })
  }
  const source = await inspectGguf(input, {hash: false, signal: options.signal})
  if (isQuantized(source.quantization) && !options.allowRequantize) {
    throw new UserError(
      `${input} is already quantized (${source.quantization}): quantizing it again to ${options.type} loses more quality than quantizing its 16-bit original.`,
      {
        code: 'ALREADY_QUANTIZED',
        suggestions: ['Quantize the F16/BF16 model instead, or pass --allow-requantize if no such file exists.'],
      },
    )
  }
  const binary = await findLlamaBinary('llama-quantize', options.llamaQuantize, {flagName: '--llama-quantize'})

  mkdirSync(dirname(output), {recursive: true})
  const temporary = join(dirname(output), `.${basename(output)}.${process.pid}.partial`)
  const args = [
    ...(options.allowRequantize ? ['--allow-requantize'] : []),
    ...(options.imatrix !== undefined ? ['--imatrix', resolve(options.imatrix)] : []),
    input,
    temporary,
    options.type,
    String(options.threads ?? availableParallelism()),
  ]
  try {
    await runProcess(binary.path, args, {
      signal: options.signal,
      processGroup: true,
      suggestions: [
        "Check the input with `invagent models inspect`; llama-quantize's last lines above say what it refused.",
      ],
      onLine: (line) => {
        const progress = parseQuantizeProgress(line)
        if (progress) options.onProgress?.(progress.done, progress.total, progress.tensor)
      },
    })
    if (!existsSync(temporary))
      throw new ExternalToolError(`llama-quantize exited successfully but wrote no ${temporary}`, {
        command: binary.path,
      })
    const result = await inspectGguf(temporary, {signal: options.signal})
    const check = checkQuantizedOutput(source, result, options.type)
    renameSync(temporary, output)
    return {
      input,
      output,
      type: options.type,
      inputQuantization: source.quantization,
      inputSize: source.fileSize,
      outputSize: statSync(output).size,
      bitsPerWeight: Math.round(check.bitsPerWeight * 1000) / 1000,
      expectedBitsPerWeight: {
        min: Math.round(check.expected.min * 1000) / 1000,
        max: Math.round(check.expected.max * 1000) / 1000,
      },
      tensorCount: result.tensorCount,
      sha256: result.sha256!,
      seconds: Math.round((performance.now() - started) / 10) / 100,
      llamaQuantize: {path: binary.path, source: binary.source},
    }
  } finally {
    rmSync(temporary, {force: true})
  }
}
