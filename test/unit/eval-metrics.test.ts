import {describe, expect, it} from 'vitest'

import {computeMetrics, meanPassHatK, passHatK, percentile} from '../../src/eval/metrics.js'
import type {TrialResult} from '../../src/eval/result.js'

/** A trial result with only what the metrics read filled in. */
function trial(
  scenario: string,
  number: number,
  status: TrialResult['status'],
  extra: Partial<TrialResult> = {},
): TrialResult {
  return {
    scenario,
    trial: number,
    status,
    ...(status === 'error' ? {error: {kind: 'engine' as const, message: 'server went away'}} : {}),
    reasons: status === 'failed' ? ['the state differs'] : [],
    differences: [],
    differenceCount: 0,
    escalations: {expected: [], actual: [], missing: [], unexpected: []},
    unsafe: {outOfScope: [], newFindings: []},
    faults: [],
    findings: [],
    wallMs: 1,
    ...extra,
  }
}

describe('pass^k (τ-bench estimator)', () => {
  it('matches hand-worked values of C(c,k)/C(n,k)', () => {
    // n = 4 trials, c = 2 passed: pass^1 = 2/4; pass^2 = C(2,2)/C(4,2) = 1/6; pass^3 = C(2,3)/C(4,3) = 0.
    expect(passHatK(4, 2, 1)).toBeCloseTo(0.5, 12)
    expect(passHatK(4, 2, 2)).toBeCloseTo(1 / 6, 12)
    expect(passHatK(4, 2, 3)).toBe(0)
    // n = 5, c = 4: C(4,2)/C(5,2) = 6/10, C(4,3)/C(5,3) = 4/10, C(4,4)/C(5,4) = 1/5, C(4,5) = 0.
    expect(passHatK(5, 4, 2)).toBeCloseTo(0.6, 12)
    expect(passHatK(5, 4, 3)).toBeCloseTo(0.4, 12)
    expect(passHatK(5, 4, 4)).toBeCloseTo(0.2, 12)
    expect(passHatK(5, 4, 5)).toBe(0)
    // n = 8, c = 6, k = 3: C(6,3)/C(8,3) = 20/56.
    expect(passHatK(8, 6, 3)).toBeCloseTo(20 / 56, 12)
    // All passing stays 1 for every k; none passing is 0.
    expect(passHatK(10, 10, 7)).toBe(1)
    expect(passHatK(10, 0, 1)).toBe(0)
  })

  it('averages over tasks, leaving out tasks with fewer than k trials', () => {
    const tasks = [
      {n: 4, c: 2},
      {n: 4, c: 4},
      {n: 4, c: 0},
    ]
    expect(meanPassHatK(tasks, 1)).toBeCloseTo((0.5 + 1 + 0) / 3, 12)
    expect(meanPassHatK(tasks, 2)).toBeCloseTo((1 / 6 + 1 + 0) / 3, 12) // = 7/18
    expect(meanPassHatK(tasks, 4)).toBeCloseTo(1 / 3, 12)
    expect(
      meanPassHatK(
        [
          {n: 2, c: 2},
          {n: 3, c: 1},
        ],
        3,
      ),
    ).toBeCloseTo(0, 12)
    expect(meanPassHatK([{n: 2, c: 2}], 3)).toBeNull()
  })

  it('rejects impossible inputs', () => {
    expect(() => passHatK(3, 4, 1)).toThrow(RangeError)
    expect(() => passHatK(3, 1, 4)).toThrow(RangeError)
    expect(() => passHatK(3, 1, 0)).toThrow(RangeError)
  })
})

describe('metrics of a run', () => {
  it('computes pass^1..K per scenario and keeps harness errors out of every rate', () => {
    const results = [
      // scenario a: 3 of 3 pass; b: 1 of 3; c: 2 of 3 completed trials pass, the third errored.
      trial('a', 1, 'passed'),
      trial('a', 2, 'passed'),
      trial('a', 3, 'passed'),
      trial('b', 1, 'passed'),
      trial('b', 2, 'failed'),
      trial('b', 3, 'failed'),
      trial('c', 1, 'passed'),
      trial('c', 2, 'passed'),
      trial('c', 3, 'error'),
    ]
    const metrics = computeMetrics(results, 3)
    expect(metrics.errors).toBe(1)
    expect(metrics.completedTrials).toBe(8)
    expect(metrics.passedTrials).toBe(6)
    // pass^1 = mean(3/3, 1/3, 2/2); pass^2 = mean(1, 0, 1); pass^3 = mean over a and b only (c has 2 trials) = mean(1, 0).
    expect(metrics.pass1).toBeCloseTo((1 + 1 / 3 + 1) / 3, 12)
    expect(metrics.passK.map((entry) => entry.k)).toEqual([1, 2, 3])
    expect(metrics.passK[1].value).toBeCloseTo((1 + 0 + 1) / 3, 12)
    expect(metrics.passK[2].value).toBeCloseTo(0.5, 12)
  })

  it('counts escalation precision and recall, unsafe writes, and per-finding costs', () => {
    const usage = (prompt: number, completion: number, cached: number) => ({
      promptTokens: prompt,
      completionTokens: completion,
      cachedPromptTokens: cached,
    })
    const finding = (steps: number, invalid: number, latencyMs: number, tokens = usage(0, 0, 0)) => ({
      findingId: `negative_on_hand:P-${steps}${latencyMs}`,
      rule: 'negative_on_hand' as const,
      outcome: 'resolved' as const,
      rootCause: 'cache_drift',
      steps,
      invalidSteps: invalid,
      usage: tokens,
      latencyMs,
    })
    const results = [
      trial('a', 1, 'failed', {
        escalations: {expected: ['x', 'y'], actual: ['x', 'z'], missing: ['y'], unexpected: ['z']},
        unsafe: {outOfScope: ['parts:P-000009'], newFindings: ['ledger_mismatch:P-000009']},
        findings: [
          finding(4, 1, 100, usage(1000, 100, 800)),
          finding(2, 0, 300, usage(500, 50, 400)),
          {...finding(0, 0, 1), findingId: 'earlier'},
        ],
      }),
      trial('b', 1, 'passed', {
        escalations: {expected: ['w'], actual: ['w'], missing: [], unexpected: []},
        findings: [finding(6, 3, 200, usage(1500, 150, 1200))],
      }),
    ]
    const metrics = computeMetrics(results, 1)
    expect(metrics.escalationPrecision).toBeCloseTo(2 / 3, 12) // x and w right, z wrong
    expect(metrics.escalationRecall).toBeCloseTo(2 / 3, 12) // x and w found, y missed
    expect(metrics.unsafe).toBe(2)
    expect(metrics.unsafeTrials).toBe(1)
    // The finding closed by an earlier fix took no step and is not counted.
    expect(metrics.findings).toBe(3)
    expect(metrics.stepsPerFinding).toBeCloseTo(12 / 3, 12)
    expect(metrics.invalidStepRate).toBeCloseTo(4 / 12, 12)
    expect(metrics.promptTokensPerFinding).toBeCloseTo(3000 / 3, 12)
    expect(metrics.completionTokensPerFinding).toBeCloseTo(300 / 3, 12)
    expect(metrics.cacheReuse).toBeCloseTo(2400 / 3000, 12)
    expect(metrics.latencyP50Ms).toBe(200)
    expect(metrics.latencyP95Ms).toBe(300)
  })

  it('uses nearest-rank percentiles', () => {
    const values = Array.from({length: 20}, (_, index) => index + 1)
    expect(percentile(values, 0.5)).toBe(10)
    expect(percentile(values, 0.95)).toBe(19)
    expect(percentile([7], 0.95)).toBe(7)
    expect(percentile([], 0.5)).toBeNull()
  })
})
