/*
 * The llama-quantize types invagent offers, with the GGUF file type each writes into
 * `general.file_type` and the bits per weight of its main block format (ggml's type traits:
 * bytes per block × 8 / elements per block). The "_S/_M/_L" mixes keep some tensors at a higher
 * type, so a whole file lands above the nominal figure; see `expectedBitsPerWeight`.
 */

export interface QuantType {
  /** GGUF `general.file_type` of a file of this type. */
  fileType: number
  /** Bits per weight of the type's main block format. */
  bitsPerWeight: number
  /** Needs an importance matrix (--imatrix) to be usable. */
  needsImatrix?: boolean
}

export const QUANT_TYPES = {
  Q4_0: {fileType: 2, bitsPerWeight: 4.5},
  Q4_1: {fileType: 3, bitsPerWeight: 5},
  Q5_0: {fileType: 8, bitsPerWeight: 5.5},
  Q5_1: {fileType: 9, bitsPerWeight: 6},
  Q8_0: {fileType: 7, bitsPerWeight: 8.5},
  Q2_K: {fileType: 10, bitsPerWeight: 2.625},
  Q2_K_S: {fileType: 21, bitsPerWeight: 2.625},
  Q3_K_S: {fileType: 11, bitsPerWeight: 3.4375},
  Q3_K_M: {fileType: 12, bitsPerWeight: 3.4375},
  Q3_K_L: {fileType: 13, bitsPerWeight: 3.4375},
  Q4_K_S: {fileType: 14, bitsPerWeight: 4.5},
  Q4_K_M: {fileType: 15, bitsPerWeight: 4.5},
  Q5_K_S: {fileType: 16, bitsPerWeight: 5.5},
  Q5_K_M: {fileType: 17, bitsPerWeight: 5.5},
  Q6_K: {fileType: 18, bitsPerWeight: 6.5625},
  IQ4_NL: {fileType: 25, bitsPerWeight: 4.5},
  IQ4_XS: {fileType: 30, bitsPerWeight: 4.25},
  IQ3_S: {fileType: 26, bitsPerWeight: 3.4375, needsImatrix: true},
  IQ2_M: {fileType: 29, bitsPerWeight: 2.5625, needsImatrix: true},
  BF16: {fileType: 32, bitsPerWeight: 16},
  F16: {fileType: 1, bitsPerWeight: 16},
  F32: {fileType: 0, bitsPerWeight: 32},
} as const satisfies Record<string, QuantType>

export type QuantTypeName = keyof typeof QUANT_TYPES

export const QUANT_TYPE_NAMES = Object.keys(QUANT_TYPES) as [QuantTypeName, ...QuantTypeName[]]

/** Whether a file of this quantization (as inspectGguf names it) is already quantized below 16 bits. */
export function isQuantized(quantization: string): boolean {
  return !['F32', 'F16', 'BF16'].includes(quantization.toUpperCase())
}

/**
 * The range of bits per weight, over all tensors, that a correct file of `type` can have. Below:
 * data is missing. Above: llama-quantize kept more tensors unquantized than the type allows
 * (norms and biases always stay F32; in small models the embeddings and output layer weigh more,
 * which `sourceBitsPerWeight` bounds from above).
 */
export function expectedBitsPerWeight(type: QuantTypeName, sourceBitsPerWeight: number): {min: number; max: number} {
  const nominal = QUANT_TYPES[type].bitsPerWeight
  // Mixes raise some tensors to Q6_K/Q8_0, and rows that are no multiple of the block size fall
  // back to a wider type: allow half again the nominal figure, never more than the source.
  return {min: nominal * 0.95, max: Math.min(Math.max(nominal * 1.5, nominal + 2.5), sourceBitsPerWeight * 1.001)}
}
