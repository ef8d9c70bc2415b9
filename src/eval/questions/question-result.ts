import {z} from 'zod'

import {GateResult, MetricComparison, Usage} from '../result.js'
import {NORMALIZATIONS} from './answer-score.js'

/*
 * The result of `invagent eval --questions`, as `--json` prints it and `--baseline` reads it
 * back. The semantic figures are null — "not measured" — when no embedding model was given:
 * they are never estimated from the text.
 */

const ratio = z.number().nullable().describe('null when nothing was there to measure')

export const QuestionOutcome = z.object({
  /** 1-based line of the question file. */
  line: z.number().int(),
  query: z.string(),
  context: z.string().nullable(),
  expected: z.string(),
  status: z.enum(['answered', 'error']),
  /** The model's text as generated; null when the engine failed on this question. */
  answer: z.string().nullable(),
  error: z.string().optional(),
  exact: z.boolean(),
  contains: z.boolean(),
  /** Cosine similarity of the answer's and the expected answer's embeddings; null when not measured. */
  similarity: z.number().nullable(),
  /** similarity >= the threshold; null when not measured. */
  semantic: z.boolean().nullable(),
  /** The answer stopped at --max-tokens rather than ending by itself. */
  cutOff: z.boolean(),
  usage: Usage,
  latencyMs: z.number().int(),
})

export const QuestionMetrics = z.object({
  questions: z.number().int(),
  answered: z.number().int(),
  errors: z.number().int().describe('questions the engine failed on: counted apart and left out of every rate'),
  exact: ratio,
  contains: ratio,
  semantic: ratio.describe('share of answers whose similarity is at or above the threshold; null when not measured'),
  similarityMean: ratio.describe('mean cosine similarity; null when not measured'),
  emptyAnswers: z.number().int(),
  cutOff: z.number().int().describe('answers that stopped at --max-tokens'),
  promptTokensPerQuestion: ratio,
  completionTokensPerQuestion: ratio,
  latencyP50Ms: ratio,
  latencyP95Ms: ratio,
})

export const QuestionEvalOutput = z.object({
  kind: z.literal('questions'),
  verdict: z.enum(['pass', 'fail', 'error']),
  exitCode: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  summary: z.string(),
  questions: z.object({
    file: z.string(),
    hash: z.string(),
    count: z.number().int(),
    withContext: z.number().int(),
    /** Lines asking what an earlier line already asked (same query and context). */
    duplicates: z.array(z.object({line: z.number().int(), firstLine: z.number().int()})),
  }),
  engine: z.object({name: z.string(), model: z.string().nullable(), url: z.string().nullable()}),
  scoring: z.object({
    normalization: z.enum(NORMALIZATIONS),
    semanticThreshold: z.number(),
    semantic: z.enum(['measured', 'not measured']),
    /** The embedding GGUF, or the endpoint that computed the embeddings. */
    embeddingModel: z.string().nullable(),
    embeddingEngine: z.enum(['embedded', 'server']).nullable(),
  }),
  startedAt: z.string(),
  wallMs: z.number().int(),
  metrics: QuestionMetrics,
  gates: z.array(GateResult),
  baseline: z
    .object({
      file: z.string(),
      sameFile: z.boolean(),
      metrics: z.array(MetricComparison),
      regressions: z.number().int(),
    })
    .nullable(),
  results: z.array(QuestionOutcome),
  files: z.object({junit: z.string().nullable(), report: z.string().nullable()}),
})

export type QuestionOutcome = z.infer<typeof QuestionOutcome>
export type QuestionMetrics = z.infer<typeof QuestionMetrics>
export type QuestionEvalResult = z.infer<typeof QuestionEvalOutput>
