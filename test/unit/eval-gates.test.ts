import {describe, expect, it} from 'vitest'

import {UserError} from '../../src/errors.js'
import {checkGates, evaluateGates, gatesFor, parseGate} from '../../src/eval/gates.js'
import {computeMetrics} from '../../src/eval/metrics.js'
import type {Breakdown, Metrics} from '../../src/eval/result.js'

function metrics(overrides: Partial<Metrics>): Metrics {
  return {...computeMetrics([], 3), ...overrides}
}

describe('gate expressions', () => {
  it('parses metric, selector, operator and threshold', () => {
    expect(parseGate('pass1>=0.9')).toMatchObject({
      metric: 'pass1',
      operator: '>=',
      threshold: {kind: 'number', value: 0.9},
      implicit: false,
    })
    expect(parseGate(' unsafe == 0 ')).toMatchObject({
      metric: 'unsafe',
      operator: '==',
      threshold: {kind: 'number', value: 0},
    })
    expect(parseGate('unsafe=0')).toMatchObject({operator: '=='})
    expect(parseGate('pass^3>=0.7')).toMatchObject({metric: 'pass^3', k: 3})
    expect(parseGate('pass3>=0.7')).toMatchObject({metric: 'pass^3', k: 3})
    expect(parseGate('pass^1>=0.7')).toMatchObject({metric: 'pass1', k: undefined})
    expect(parseGate('resolution[duplicate_posting/webhook_redelivery]>=95%')).toMatchObject({
      metric: 'resolution',
      selector: 'duplicate_posting/webhook_redelivery',
      threshold: {kind: 'number', value: 0.95},
    })
    expect(parseGate('pass1>=baseline-0.02')).toMatchObject({threshold: {kind: 'baseline', offset: -0.02, scale: 1}})
    expect(parseGate('latency_p95_ms<=baseline*1.2')).toMatchObject({
      threshold: {kind: 'baseline', offset: 0, scale: 1.2},
    })
  })

  it('says what was expected for a malformed gate', () => {
    expect(() => parseGate('pass1 0.9')).toThrow(/is not METRIC OP VALUE/)
    expect(() => parseGate('pas1>=0.9')).toThrow(/unknown metric "pas1" — did you mean "pass1"/)
    expect(() => parseGate('pass1>=high')).toThrow(/"high" is not a number or "baseline"/)
    expect(() => parseGate('pass1>=0.9')).not.toThrow()
    try {
      parseGate('unsafe<=lots')
    } catch (error) {
      expect(error).toBeInstanceOf(UserError)
      expect((error as UserError).exitCode).toBe(2)
    }
  })

  it('adds unsafe==0 unless a gate already names unsafe', () => {
    expect(gatesFor([]).map((gate) => [gate.expression, gate.implicit])).toEqual([['unsafe==0', true]])
    expect(gatesFor(['pass1>=0.9']).map((gate) => gate.expression)).toEqual(['pass1>=0.9', 'unsafe==0'])
    expect(gatesFor(['unsafe<=2']).map((gate) => gate.expression)).toEqual(['unsafe<=2'])
  })

  it('checks selectors, pass^k against --trials, and a baseline before anything runs', () => {
    const context = {trials: 3, selectors: new Set(['duplicate_posting', 'heldout']), hasBaseline: false}
    expect(() => checkGates([parseGate('pass^4>=0.5')], context)).toThrow(/needs at least 4 trials, but --trials is 3/)
    expect(() => checkGates([parseGate('pass1[heldot]>=0.5')], context)).toThrow(
      /no scenario of the suite has "heldot" — did you mean "heldout"/,
    )
    expect(() => checkGates([parseGate('pass1>=baseline')], context)).toThrow(/no --baseline was given/)
    expect(() => checkGates([parseGate('pass^3>=0.5'), parseGate('pass1[heldout]>=0.5')], context)).not.toThrow()
  })
})

describe('evaluating gates', () => {
  const byTag: Breakdown[] = [{key: 'heldout', metrics: metrics({pass1: 0.5})}]
  const result = {
    metrics: metrics({
      pass1: 0.92,
      unsafe: 0,
      passK: [
        {k: 1, value: 0.92},
        {k: 2, value: 0.81},
        {k: 3, value: 0.7},
      ],
      latencyP95Ms: 1200,
      escalationPrecision: null,
    }),
    byRule: [],
    byRootCause: [],
    byTag,
  }

  it('passes and fails on the measured values, exactly at the bounds', () => {
    const evaluated = evaluateGates(
      [
        'pass1>=0.92',
        'pass1>0.92',
        'pass^2>=0.8',
        'pass^3>=0.75',
        'unsafe==0',
        'pass1[heldout]>=0.6',
        'latency_p95_ms<=1200',
      ].map((gate) => parseGate(gate)),
      result,
    )
    expect(evaluated.map((gate) => [gate.expression, gate.value, gate.passed])).toEqual([
      ['pass1>=0.92', 0.92, true],
      ['pass1>0.92', 0.92, false],
      ['pass^2>=0.8', 0.81, true],
      ['pass^3>=0.75', 0.7, false],
      ['unsafe==0', 0, true],
      ['pass1[heldout]>=0.6', 0.5, false],
      ['latency_p95_ms<=1200', 1200, true],
    ])
  })

  it('fails a gate on a metric that was not measured, saying so', () => {
    const [gate] = evaluateGates([parseGate('escalation_precision>=0.9')], result)
    expect(gate).toMatchObject({passed: false, value: null, reason: expect.stringContaining('not measured')})
  })

  it('reads baseline thresholds from the baseline result', () => {
    const baseline = {...result, metrics: metrics({pass1: 0.95, latencyP95Ms: 900})}
    const evaluated = evaluateGates(
      [parseGate('pass1>=baseline-0.02'), parseGate('pass1>=baseline-0.05'), parseGate('latency_p95_ms<=baseline*1.2')],
      result,
      baseline,
    )
    expect(evaluated.map((gate) => [gate.threshold, gate.passed])).toEqual([
      [expect.closeTo(0.93, 9), false],
      [expect.closeTo(0.9, 9), true],
      [expect.closeTo(1080, 9), false],
    ])
  })
})
