import {readFileSync} from 'node:fs'

import {UserError} from '../../errors.js'
import {compare, parseGate, type Gate} from '../gates.js'
import {percentile} from '../metrics.js'
import type {GateResult, MetricComparison} from '../result.js'
import {
  QuestionEvalOutput,
  type QuestionEvalResult,
  type QuestionMetrics,
  type QuestionOutcome,
} from './question-result.js'

/*
 * Metrics, gates and the baseline comparison of an answer-level eval. Gates are written as for
 * scenarios (`contains>=0.8`, `semantic>=baseline-0.02`), over the metrics below; a gate on a
 * semantic figure without an embedding model is refused before anything runs, since "not
 * measured" can never pass.
 */

const share = (part: number, whole: number) => (whole === 0 ? null : part / whole)
const mean = (values: readonly number[]) =>
  values.length === 0 ? null : values.reduce((sum, value) => sum + value, 0) / values.length

/** Errored questions (the engine failed) are counted apart and left out of every rate. */
export function computeQuestionMetrics(results: readonly QuestionOutcome[]): QuestionMetrics {
  const answered = results.filter((result) => result.status === 'answered')
  const similarities = answered.flatMap((result) => (result.similarity === null ? [] : [result.similarity]))
  const measured = answered.length > 0 && similarities.length === answered.length
  return {
    questions: results.length,
    answered: answered.length,
    errors: results.length - answered.length,
    exact: share(answered.filter((result) => result.exact).length, answered.length),
    contains: share(answered.filter((result) => result.contains).length, answered.length),
    semantic: measured ? share(answered.filter((result) => result.semantic).length, answered.length) : null,
    similarityMean: measured ? mean(similarities) : null,
    emptyAnswers: answered.filter((result) => result.answer!.trim() === '').length,
    cutOff: answered.filter((result) => result.cutOff).length,
    promptTokensPerQuestion: mean(answered.map((result) => result.usage.promptTokens)),
    completionTokensPerQuestion: mean(answered.map((result) => result.usage.completionTokens)),
    latencyP50Ms: percentile(
      answered.map((result) => result.latencyMs),
      0.5,
    ),
    latencyP95Ms: percentile(
      answered.map((result) => result.latencyMs),
      0.95,
    ),
  }
}

type Direction = 'higher' | 'lower'

/** Gate metric → how to read it, which way is better, and the relative change that is noise. */
const QUESTION_METRICS: Record<
  string,
  {read: (metrics: QuestionMetrics) => number | null; better: Direction; tolerance: number; semantic?: true}
> = {
  exact: {read: (metrics) => metrics.exact, better: 'higher', tolerance: 0},
  contains: {read: (metrics) => metrics.contains, better: 'higher', tolerance: 0},
  semantic: {read: (metrics) => metrics.semantic, better: 'higher', tolerance: 0, semantic: true},
  similarity: {read: (metrics) => metrics.similarityMean, better: 'higher', tolerance: 0, semantic: true},
  errors: {read: (metrics) => metrics.errors, better: 'lower', tolerance: 0},
  empty_answers: {read: (metrics) => metrics.emptyAnswers, better: 'lower', tolerance: 0},
  cut_off: {read: (metrics) => metrics.cutOff, better: 'lower', tolerance: 0},
  prompt_tokens_per_question: {read: (metrics) => metrics.promptTokensPerQuestion, better: 'lower', tolerance: 0.1},
  completion_tokens_per_question: {
    read: (metrics) => metrics.completionTokensPerQuestion,
    better: 'lower',
    tolerance: 0.1,
  },
  latency_p50_ms: {read: (metrics) => metrics.latencyP50Ms, better: 'lower', tolerance: 0.1},
  latency_p95_ms: {read: (metrics) => metrics.latencyP95Ms, better: 'lower', tolerance: 0.1},
}

export const QUESTION_GATE_METRICS = Object.keys(QUESTION_METRICS)

/** Parses the gates and checks before a run that each can be evaluated. */
export function questionGates(
  expressions: readonly string[],
  context: {semanticMeasured: boolean; hasBaseline: boolean},
): Gate[] {
  return expressions.map((expression) => {
    const gate = parseGate(expression, false, QUESTION_GATE_METRICS)
    if (gate.selector !== undefined)
      throw new UserError(`gate "${gate.expression}": question files have no selectors ([${gate.selector}])`, {
        code: 'GATE_INVALID',
        suggestions: [`Gate the whole file, e.g. --gate "${gate.metric}>=0.8".`],
      })
    if (QUESTION_METRICS[gate.metric].semantic && !context.semanticMeasured) {
      throw new UserError(
        `gate "${gate.expression}" needs the semantic metric, which is not measured without an embedding model`,
        {
          code: 'GATE_INVALID',
          suggestions: ['Pass --embedding-model PATH (an embedding GGUF), or gate exact/contains only.'],
        },
      )
    }
    if (gate.threshold.kind === 'baseline' && !context.hasBaseline)
      throw new UserError(`gate "${gate.expression}" compares with the baseline, but no --baseline was given`, {
        code: 'GATE_INVALID',
        suggestions: ['Pass --baseline FILE (the --json output of an earlier `invagent eval --questions`).'],
      })
    return gate
  })
}

export function evaluateQuestionGates(
  gates: readonly Gate[],
  metrics: QuestionMetrics,
  baseline?: QuestionMetrics,
): GateResult[] {
  return gates.map((gate) => {
    const read = QUESTION_METRICS[gate.metric].read
    const value = read(metrics)
    let threshold: number | null
    if (gate.threshold.kind === 'number') threshold = gate.threshold.value
    else {
      const base = baseline ? read(baseline) : null
      threshold = base === null ? null : base * gate.threshold.scale + gate.threshold.offset
    }
    const common = {expression: gate.expression, metric: gate.metric, operator: gate.operator, value, implicit: false}
    if (threshold === null)
      return {...common, threshold: null, passed: false, reason: 'the baseline has no value for this metric'}
    if (value === null)
      return {...common, threshold, passed: false, reason: 'not measured: nothing in this run to compute it from'}
    return {...common, threshold, passed: compare(value, gate.operator, threshold)}
  })
}

/** Reads an earlier result written by `invagent eval --questions --json`. */
export function loadQuestionBaseline(path: string): QuestionEvalResult {
  let value: unknown
  try {
    value = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new UserError(`cannot read the baseline ${path}: ${(error as Error).message}`, {
      code: 'BASELINE_UNREADABLE',
      suggestions: [
        'A baseline is the --json output of an earlier run: `invagent eval --questions FILE … --json > baseline.json`.',
      ],
    })
  }
  const parsed = QuestionEvalOutput.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new UserError(
      `${path} is not the --json output of invagent eval --questions (${issue.path.join('.') || '(root)'}: ${
        issue.message
      })`,
      {
        code: 'BASELINE_INVALID',
        suggestions: ['Write a baseline with `invagent eval --questions FILE … --json > baseline.json`.'],
      },
    )
  }
  return parsed.data
}

const EPSILON = 1e-9

/** Every metric against the baseline's; a rate or a count regresses at any change for the worse, costs beyond 10%. */
export function compareQuestionMetrics(current: QuestionMetrics, baseline: QuestionMetrics): MetricComparison[] {
  return Object.entries(QUESTION_METRICS).map(([metric, {read, better, tolerance}]) => {
    const now = read(current)
    const before = read(baseline)
    const delta = now === null || before === null ? null : now - before
    const allowance = before === null ? 0 : Math.abs(before) * tolerance + EPSILON
    const regressed =
      now !== null && before !== null && (better === 'higher' ? now < before - allowance : now > before + allowance)
    return {metric, baseline: before, current: now, delta, regressed}
  })
}
