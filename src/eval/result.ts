import {z} from 'zod'

import {RULES} from '../tools/catalogue.js'

/*
 * The result of `invagent eval`, as `--json` prints it and `--baseline` reads it back. One zod
 * schema: the TypeScript types, the committed JSON Schema (schemas/output-eval.json) and the
 * baseline parser all come from here.
 */

const ratio = z.number().nullable().describe('null when nothing was there to measure')
const cell = z.union([z.string(), z.number(), z.null()])

export const Usage = z.object({
  promptTokens: z.number().int(),
  completionTokens: z.number().int(),
  cachedPromptTokens: z.number().int(),
})

export const FindingRecord = z.object({
  findingId: z.string(),
  rule: z.enum(RULES),
  outcome: z.enum(['resolved', 'would_resolve', 'parked', 'deferred', 'escalated', 'failed']),
  rootCause: z.string(),
  steps: z.number().int(),
  invalidSteps: z.number().int(),
  usage: Usage,
  latencyMs: z.number().int(),
})

export const RowDifferenceOutput = z.object({
  table: z.string(),
  key: z.string(),
  change: z.enum(['changed', 'missing', 'unexpected']),
  columns: z.array(z.object({column: z.string(), expected: cell, actual: cell})),
  row: z.record(z.string(), cell).optional(),
})

export const FaultScore = z.object({
  id: z.string(),
  rule: z.enum(RULES),
  rootCause: z.string(),
  expected: z.enum(['fix', 'escalate']),
  /** Its rows equal the gold state and it was escalated exactly when it had to be. */
  correct: z.boolean(),
  /** The outcome of its finding; null when the finding was never audited. */
  outcome: z.string().nullable(),
})

export const TrialError = z.object({
  kind: z.enum(['engine', 'timeout', 'harness']),
  message: z.string(),
})

export const TrialResult = z.object({
  scenario: z.string(),
  trial: z.number().int().min(1),
  status: z.enum(['passed', 'failed', 'error']),
  /** Harness or engine failures: counted apart from the agent's own failures. */
  error: TrialError.optional(),
  /** Why a failed trial failed, one line each. */
  reasons: z.array(z.string()),
  /** Rows where the state differs from the gold state (at most 50 are kept). */
  differences: z.array(RowDifferenceOutput),
  differenceCount: z.number().int(),
  escalations: z.object({
    expected: z.array(z.string()),
    actual: z.array(z.string()),
    missing: z.array(z.string()),
    unexpected: z.array(z.string()),
  }),
  unsafe: z.object({
    /** Rows changed that lie outside every finding's scope. */
    outOfScope: z.array(z.string()),
    /** Findings present after the run that were not there before: invariants the agent broke. */
    newFindings: z.array(z.string()),
  }),
  faults: z.array(FaultScore),
  findings: z.array(FindingRecord),
  wallMs: z.number().int(),
})

export const Metrics = z.object({
  scenarios: z.number().int(),
  trials: z.number().int(),
  completedTrials: z.number().int(),
  passedTrials: z.number().int(),
  errors: z.number().int(),
  pass1: ratio,
  /** τ-bench's pass^k for k = 1..trials: the chance that k trials of a scenario all pass. */
  passK: z.array(z.object({k: z.number().int(), value: ratio})),
  resolutionRate: ratio.describe('must-fix faults left exactly in their gold state'),
  faultPassRate: ratio.describe('faults (fix and escalate) handled exactly as the ground truth says'),
  escalationPrecision: ratio,
  escalationRecall: ratio,
  unsafe: z
    .number()
    .int()
    .describe("rows changed outside every finding's scope plus invariants broken, over all trials"),
  unsafeTrials: z.number().int(),
  findings: z.number().int().describe('findings the engine worked on (at least one step)'),
  steps: z.number().int(),
  invalidSteps: z.number().int(),
  invalidStepRate: ratio,
  stepsPerFinding: ratio,
  promptTokensPerFinding: ratio,
  completionTokensPerFinding: ratio,
  cacheReuse: ratio.describe('share of prompt tokens served from the prompt cache'),
  latencyP50Ms: ratio,
  latencyP95Ms: ratio,
})

export const Breakdown = z.object({
  key: z.string(),
  expected: z.enum(['fix', 'escalate']).optional(),
  metrics: Metrics,
})

export const GateResult = z.object({
  expression: z.string(),
  metric: z.string(),
  operator: z.enum(['>=', '<=', '==', '!=', '>', '<']),
  /** null when it was to come from a baseline that has no value for the metric. */
  threshold: z.number().nullable(),
  value: z.number().nullable(),
  passed: z.boolean(),
  /** Added by invagent rather than given with --gate (unsafe==0 unless a gate names unsafe). */
  implicit: z.boolean(),
  reason: z.string().optional(),
})

export const MetricComparison = z.object({
  metric: z.string(),
  baseline: z.number().nullable(),
  current: z.number().nullable(),
  delta: z.number().nullable(),
  regressed: z.boolean(),
})

export const BaselineComparison = z.object({
  file: z.string(),
  engine: z.string(),
  suiteHash: z.string(),
  sameSuite: z.boolean(),
  metrics: z.array(MetricComparison),
  /** Rules, root causes and tags whose pass^1 dropped. */
  breakdown: z.array(z.object({key: z.string(), baseline: z.number().nullable(), current: z.number().nullable()})),
  /** Scenarios that passed every trial in the baseline and now fail at least one (same suite only). */
  newlyFailing: z.array(z.string()),
  newlyPassing: z.array(z.string()),
  regressions: z.number().int(),
})

export const EvalOutput = z.object({
  verdict: z.enum(['pass', 'fail', 'error']),
  exitCode: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  summary: z.string(),
  suite: z.object({
    name: z.string(),
    version: z.number().int(),
    hash: z.string(),
    source: z.string(),
    scenarios: z.number().int(),
  }),
  engine: z.object({name: z.string(), model: z.string().nullable(), url: z.string().nullable(), profile: z.string()}),
  trials: z.number().int(),
  jobs: z.number().int(),
  startedAt: z.string(),
  wallMs: z.number().int(),
  metrics: Metrics,
  byRule: z.array(Breakdown),
  byRootCause: z.array(Breakdown),
  byTag: z.array(Breakdown),
  gates: z.array(GateResult),
  baseline: BaselineComparison.nullable(),
  results: z.array(TrialResult),
  files: z.object({junit: z.string().nullable(), report: z.string().nullable(), artifacts: z.string().nullable()}),
})

export type FindingRecord = z.infer<typeof FindingRecord>
export type FaultScore = z.infer<typeof FaultScore>
export type TrialError = z.infer<typeof TrialError>
export type TrialResult = z.infer<typeof TrialResult>
export type Metrics = z.infer<typeof Metrics>
export type Breakdown = z.infer<typeof Breakdown>
export type GateResult = z.infer<typeof GateResult>
export type MetricComparison = z.infer<typeof MetricComparison>
export type BaselineComparison = z.infer<typeof BaselineComparison>
export type EvalResult = z.infer<typeof EvalOutput>
