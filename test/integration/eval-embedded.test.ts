import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {runEval} from '../../src/eval/run-eval.js'
import {temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/*
 * The release gate on a real model: the embedded engine on the tiny random-weight GGUF, through
 * the whole harness (sandboxes, apply mode, scoring). A random model resolves little; what the
 * gate must show is that it does no harm and that its costs are measured.
 */
describe('invagent eval on the embedded engine', () => {
  it('scores a random model: no unsafe write, no harness error, tokens and cache reuse measured', async () => {
    const directory = temporaryDirectory()
    const model = join(directory, 'tiny.gguf')
    writeTinyGguf(model, {contextLength: 16384})
    const result = await runEval({
      scenarios: 3,
      seed: 1,
      trials: 1,
      gates: ['unsafe==0'],
      // One thread: the other test worker holds the second core.
      engine: {engine: 'embedded', model, threads: 1, contextSize: 16384, maxTokens: 32, seed: 1},
    })
    expect(result.results.filter((trial) => trial.status === 'error').map((trial) => trial.error)).toEqual([])
    expect(result.verdict).toBe('pass')
    expect(result.exitCode).toBe(0)
    expect(result.engine.name).toBe('embedded')
    expect(result.metrics.unsafe).toBe(0)
    expect(result.metrics.findings).toBeGreaterThanOrEqual(2)
    expect(result.metrics.promptTokensPerFinding).toBeGreaterThan(1000)
    expect(result.metrics.completionTokensPerFinding).toBeGreaterThan(0)
    expect(result.metrics.cacheReuse).toBeGreaterThan(0.5)
    expect(result.metrics.latencyP95Ms).toBeGreaterThanOrEqual(result.metrics.latencyP50Ms!)
    // The clean inventory passes whatever the model would have said: it is never asked.
    const clean = result.results.find((trial) => trial.scenario.endsWith('-clean'))!
    expect(clean.status).toBe('passed')
    expect(clean.findings).toEqual([])
  }, 180_000)
})
