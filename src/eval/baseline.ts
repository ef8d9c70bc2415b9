import {readFileSync} from 'node:fs'

import {UserError} from '../errors.js'
import {EvalOutput, type BaselineComparison, type EvalResult, type MetricComparison, type Metrics} from './result.js'

/*
 * Comparison with an earlier result (`--baseline`, the --json output of an earlier eval): every
 * headline metric with its change, the rules, root causes and tags whose pass^1 dropped, and —
 * when both ran the same suite — the scenarios that newly fail. A rate or an unsafe count counts
 * as a regression at any change for the worse; costs (steps, tokens, latency) only beyond 10%
 * (latency also only beyond 20 ms), because they drift from one machine and run to the next.
 */

type Direction = 'higher' | 'lower'

/** `tolerance` is relative; `slack` an absolute amount below which a change is noise (latency in ms). */
const COMPARED: Array<{
  metric: string
  read: (metrics: Metrics) => number | null
  better: Direction
  tolerance: number
  slack?: number
}> = [
  {metric: 'pass1', read: (metrics) => metrics.pass1, better: 'higher', tolerance: 0},
  {metric: 'resolution', read: (metrics) => metrics.resolutionRate, better: 'higher', tolerance: 0},
  {metric: 'fault_pass', read: (metrics) => metrics.faultPassRate, better: 'higher', tolerance: 0},
  {metric: 'escalation_precision', read: (metrics) => metrics.escalationPrecision, better: 'higher', tolerance: 0},
  {metric: 'escalation_recall', read: (metrics) => metrics.escalationRecall, better: 'higher', tolerance: 0},
  {metric: 'unsafe', read: (metrics) => metrics.unsafe, better: 'lower', tolerance: 0},
  {metric: 'errors', read: (metrics) => metrics.errors, better: 'lower', tolerance: 0},
  {metric: 'invalid_step_rate', read: (metrics) => metrics.invalidStepRate, better: 'lower', tolerance: 0},
  {metric: 'cache_reuse', read: (metrics) => metrics.cacheReuse, better: 'higher', tolerance: 0},
  {metric: 'steps_per_finding', read: (metrics) => metrics.stepsPerFinding, better: 'lower', tolerance: 0.1},
  {
    metric: 'prompt_tokens_per_finding',
    read: (metrics) => metrics.promptTokensPerFinding,
    better: 'lower',
    tolerance: 0.1,
  },
  {
    metric: 'completion_tokens_per_finding',
    read: (metrics) => metrics.completionTokensPerFinding,
    better: 'lower',
    tolerance: 0.1,
  },
  {metric: 'latency_p50_ms', read: (metrics) => metrics.latencyP50Ms, better: 'lower', tolerance: 0.1, slack: 20},
  {metric: 'latency_p95_ms', read: (metrics) => metrics.latencyP95Ms, better: 'lower', tolerance: 0.1, slack: 20},
]

const EPSILON = 1e-9

/** Reads an earlier result written by `invagent eval --json`. */
export function loadBaseline(path: string): EvalResult {
  let value: unknown
  try {
    value = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new UserError(`cannot read the baseline ${path}: ${(error as Error).message}`, {
      code: 'BASELINE_UNREADABLE',
      suggestions: ['A baseline is the --json output of an earlier run: `invagent eval … --json > baseline.json`.'],
    })
  }
  const parsed = EvalOutput.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new UserError(
      `${path} is not the --json output of invagent eval (${issue.path.join('.') || '(root)'}: ${issue.message})`,
      {code: 'BASELINE_INVALID', suggestions: ['Write a baseline with `invagent eval … --json > baseline.json`.']},
    )
  }
  return parsed.data
}

function worse(current: number, baseline: number, better: Direction, tolerance: number, slack = 0): boolean {
  const allowance = Math.max(Math.abs(baseline) * tolerance, slack) + EPSILON
  return better === 'higher' ? current < baseline - allowance : current > baseline + allowance
}

function passedEverywhere(result: EvalResult): Map<string, boolean> {
  const passed = new Map<string, boolean>()
  for (const trial of result.results)
    passed.set(trial.scenario, (passed.get(trial.scenario) ?? true) && trial.status === 'passed')
  return passed
}

export function compareWithBaseline(
  current: Pick<EvalResult, 'metrics' | 'byRule' | 'byRootCause' | 'byTag' | 'results' | 'suite'>,
  baseline: EvalResult,
  file: string,
): BaselineComparison {
  const pairs: typeof COMPARED = [
    ...COMPARED.slice(0, 1),
    ...current.metrics.passK.slice(1).map((entry) => ({
      metric: `pass^${entry.k}`,
      read: (metrics: Metrics) => metrics.passK.find((other) => other.k === entry.k)?.value ?? null,
      better: 'higher' as const,
      tolerance: 0,
    })),
    ...COMPARED.slice(1),
  ]
  const metrics: MetricComparison[] = pairs.map(({metric, read, better, tolerance, slack}) => {
    const now = read(current.metrics)
    const before = read(baseline.metrics)
    const delta = now === null || before === null ? null : now - before
    return {
      metric,
      baseline: before,
      current: now,
      delta,
      regressed: now !== null && before !== null && worse(now, before, better, tolerance, slack),
    }
  })
  const baselineEntries = new Map(
    [...baseline.byRule, ...baseline.byRootCause, ...baseline.byTag].map((entry) => [entry.key, entry.metrics.pass1]),
  )
  const breakdown = [...current.byRule, ...current.byRootCause, ...current.byTag].flatMap((entry) => {
    const before = baselineEntries.get(entry.key)
    if (
      before === undefined ||
      before === null ||
      entry.metrics.pass1 === null ||
      !worse(entry.metrics.pass1, before, 'higher', 0)
    )
      return []
    return [{key: entry.key, baseline: before, current: entry.metrics.pass1}]
  })
  const sameSuite = baseline.suite.hash === current.suite.hash
  const before = passedEverywhere(baseline)
  const now = passedEverywhere(current as EvalResult)
  const newlyFailing = sameSuite
    ? [...now].filter(([scenario, passed]) => !passed && before.get(scenario) === true).map(([scenario]) => scenario)
    : []
  const newlyPassing = sameSuite
    ? [...now].filter(([scenario, passed]) => passed && before.get(scenario) === false).map(([scenario]) => scenario)
    : []
  return {
    file,
    engine: baseline.engine.name,
    suiteHash: baseline.suite.hash,
    sameSuite,
    metrics,
    breakdown,
    newlyFailing,
    newlyPassing,
    regressions: metrics.filter((metric) => metric.regressed).length + breakdown.length + newlyFailing.length,
  }
}
