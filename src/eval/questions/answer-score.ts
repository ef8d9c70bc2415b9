/*
 * The three answer-level metrics. `exact` and `contains` compare texts after a normalisation
 * chosen per run; `semantic@τ` is the cosine similarity of the two texts' embeddings, at or above
 * a threshold τ. An empty answer is wrong on all three: it is neither equal to a (non-empty)
 * expected answer, nor contains it, nor has a meaning to compare — it is never embedded.
 */

export const NORMALIZATIONS = ['fold', 'trim', 'none'] as const
/** fold: Unicode NFC, trimmed, case-folded (the default); trim: trimmed only; none: byte for byte. */
export type Normalization = (typeof NORMALIZATIONS)[number]

/**
 * Case folding without a locale: upper then lower case maps "ß" and "SS" alike and folds most
 * scripts' cases together, which plain `toLowerCase` does not.
 */
function caseFold(text: string): string {
  return text.toUpperCase().toLowerCase()
}

export function normalizeAnswer(text: string, normalization: Normalization): string {
  if (normalization === 'none') return text
  if (normalization === 'trim') return text.trim()
  return caseFold(text.normalize('NFC').trim())
}

/** The answer equals the expected one after normalisation. */
export function exactMatch(answer: string, expected: string, normalization: Normalization): boolean {
  const normalized = normalizeAnswer(answer, normalization)
  return normalized !== '' && normalized === normalizeAnswer(expected, normalization)
}

/** The expected answer appears in the answer after normalisation (an empty one never counts). */
export function containsMatch(answer: string, expected: string, normalization: Normalization): boolean {
  const wanted = normalizeAnswer(expected, normalization)
  return wanted !== '' && normalizeAnswer(answer, normalization).includes(wanted)
}

/** Cosine similarity of two vectors, in [-1, 1]; 0 when either has no length (nothing to compare). */
export function cosineSimilarity(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length)
    throw new RangeError(
      `embeddings of different sizes (${a.length} and ${b.length}): were they made by the same model?`,
    )
  let dot = 0
  let normA = 0
  let normB = 0
  for (let index = 0; index < a.length; index++) {
    dot += a[index] * b[index]
    normA += a[index] * a[index]
    normB += b[index] * b[index]
  }
  if (normA === 0 || normB === 0) return 0
  // Rounding can carry the ratio of identical vectors a hair past 1.
  return Math.max(-1, Math.min(1, dot / Math.sqrt(normA * normB)))
}
