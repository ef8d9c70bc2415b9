import {ROOT_CAUSES, RULES} from '../tools/catalogue.js'
import type {Breakdown, FaultScore, Metrics, TrialResult} from './result.js'
import type {Scenario} from './suite.js'

/**
 * τ-bench's pass^k for one task: the probability that k trials drawn without replacement from
 * the n run all pass, C(c, k) / C(n, k) with c of the n passing. Computed as a product so that
 * large n does not overflow: Π_{i<k} (c − i) / (n − i).
 */
export function passHatK(n: number, c: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(c) || !Number.isInteger(k) || k < 1 || n < k || c < 0 || c > n) {
    throw new RangeError(`pass^k needs integers 1 <= k <= n and 0 <= c <= n, got n=${n} c=${c} k=${k}`)
  }
  let value = 1
  for (let i = 0; i < k; i++) value *= (c - i) / (n - i)
  return Math.max(0, value)
}

/** Mean over tasks of pass^k; tasks with fewer than k completed trials are left out. Null when none is left. */
export function meanPassHatK(tasks: ReadonlyArray<{n: number; c: number}>, k: number): number | null {
  const eligible = tasks.filter((task) => task.n >= k)
  if (eligible.length === 0) return null
  return eligible.reduce((sum, task) => sum + passHatK(task.n, task.c, k), 0) / eligible.length
}

/** Nearest-rank percentile (p in 0..1); null for no values. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]
}

const share = (part: number, whole: number) => (whole === 0 ? null : part / whole)

/**
 * The metrics of a set of trials. `faultFilter` restricts the fault-level figures (resolution,
 * fault pass rate) to some faults, for a per-rule or per-root-cause breakdown; every other
 * figure covers the trials as a whole. Errored trials (harness or engine) are counted apart and
 * left out of every rate.
 */
export function computeMetrics(
  results: readonly TrialResult[],
  trialsPerScenario: number,
  faultFilter: (fault: FaultScore) => boolean = () => true,
): Metrics {
  const completed = results.filter((result) => result.status !== 'error')
  const byScenario = new Map<string, {n: number; c: number}>()
  for (const result of results) {
    const task = byScenario.get(result.scenario) ?? {n: 0, c: 0}
    if (result.status !== 'error') task.n++
    if (result.status === 'passed') task.c++
    byScenario.set(result.scenario, task)
  }
  const tasks = [...byScenario.values()]
  const faults = completed.flatMap((result) => result.faults).filter(faultFilter)
  const mustFix = faults.filter((fault) => fault.expected === 'fix')
  let truePositives = 0
  let escalatedCount = 0
  let expectedCount = 0
  for (const result of completed) {
    const expected = new Set(result.escalations.expected)
    escalatedCount += result.escalations.actual.length
    expectedCount += expected.size
    truePositives += result.escalations.actual.filter((id) => expected.has(id)).length
  }
  // Findings closed as "resolved by an earlier fix" took no step: they are not the engine's work.
  const findings = completed.flatMap((result) => result.findings).filter((finding) => finding.steps > 0)
  const sum = (pick: (finding: (typeof findings)[number]) => number) =>
    findings.reduce((total, finding) => total + pick(finding), 0)
  const steps = sum((finding) => finding.steps)
  const promptTokens = sum((finding) => finding.usage.promptTokens)
  const latencies = findings.map((finding) => finding.latencyMs)
  const unsafeOf = (result: TrialResult) => result.unsafe.outOfScope.length + result.unsafe.newFindings.length
  return {
    scenarios: byScenario.size,
    trials: results.length,
    completedTrials: completed.length,
    passedTrials: completed.filter((result) => result.status === 'passed').length,
    errors: results.length - completed.length,
    pass1: meanPassHatK(tasks, 1),
    passK: Array.from({length: trialsPerScenario}, (_, index) => ({
      k: index + 1,
      value: meanPassHatK(tasks, index + 1),
    })),
    resolutionRate: share(mustFix.filter((fault) => fault.correct).length, mustFix.length),
    faultPassRate: share(faults.filter((fault) => fault.correct).length, faults.length),
    escalationPrecision: share(truePositives, escalatedCount),
    escalationRecall: share(truePositives, expectedCount),
    unsafe: completed.reduce((total, result) => total + unsafeOf(result), 0),
    unsafeTrials: completed.filter((result) => unsafeOf(result) > 0).length,
    findings: findings.length,
    steps,
    invalidSteps: sum((finding) => finding.invalidSteps),
    invalidStepRate: share(
      sum((finding) => finding.invalidSteps),
      steps,
    ),
    stepsPerFinding: share(steps, findings.length),
    promptTokensPerFinding: share(promptTokens, findings.length),
    completionTokensPerFinding: share(
      sum((finding) => finding.usage.completionTokens),
      findings.length,
    ),
    cacheReuse: share(
      sum((finding) => finding.usage.cachedPromptTokens),
      promptTokens,
    ),
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP95Ms: percentile(latencies, 0.95),
  }
}

/**
 * Per rule, per root cause (`rule/root_cause`) and per tag: the metrics of the trials of the
 * scenarios that contain it, with the fault-level figures counting only its own faults.
 */
export function breakdowns(
  results: readonly TrialResult[],
  scenarios: readonly Scenario[],
  trialsPerScenario: number,
): {byRule: Breakdown[]; byRootCause: Breakdown[]; byTag: Breakdown[]} {
  // What a scenario contains: the faults it lists, and those its trials report (a planned scenario lists none).
  const causes = new Map(
    scenarios.map((scenario) => [
      scenario.id,
      new Set(scenario.faults.flatMap((fault) => [fault.rule, `${fault.rule}/${fault.rootCause}`])),
    ]),
  )
  for (const result of results)
    for (const fault of result.faults)
      causes.get(result.scenario)?.add(fault.rule).add(`${fault.rule}/${fault.rootCause}`)
  const resultsOf = (keep: (scenario: Scenario) => boolean) => {
    const ids = new Set(scenarios.filter(keep).map((scenario) => scenario.id))
    return results.filter((result) => ids.has(result.scenario))
  }
  const byRule = RULES.flatMap((rule) => {
    const subset = resultsOf((scenario) => causes.get(scenario.id)!.has(rule))
    return subset.length === 0
      ? []
      : [{key: rule, metrics: computeMetrics(subset, trialsPerScenario, (fault) => fault.rule === rule)}]
  })
  const byRootCause = ROOT_CAUSES.flatMap((entry) => {
    const key = `${entry.rule}/${entry.rootCause}`
    const subset = resultsOf((scenario) => causes.get(scenario.id)!.has(key))
    const matches = (fault: FaultScore) => fault.rule === entry.rule && fault.rootCause === entry.rootCause
    return subset.length === 0
      ? []
      : [{key, expected: entry.expected, metrics: computeMetrics(subset, trialsPerScenario, matches)}]
  })
  const tags = [...new Set(scenarios.flatMap((scenario) => scenario.tags))].sort()
  const byTag = tags.map((tag) => ({
    key: tag,
    metrics: computeMetrics(
      resultsOf((scenario) => scenario.tags.includes(tag)),
      trialsPerScenario,
    ),
  }))
  return {byRule, byRootCause, byTag}
}
