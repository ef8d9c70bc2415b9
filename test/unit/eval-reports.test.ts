import {describe, expect, it} from 'vitest'

import {compareWithBaseline} from '../../src/eval/baseline.js'
import {toJunitXml, xmlEscape} from '../../src/eval/junit.js'
import {toMarkdown} from '../../src/eval/markdown.js'
import type {EvalResult} from '../../src/eval/result.js'
import {runEval} from '../../src/eval/run-eval.js'

/** A real result (rules engine, three generated scenarios) with its second trial turned into a failure carrying hostile text. */
async function resultWithHostileFailure(base?: EvalResult): Promise<EvalResult> {
  const result = base
    ? structuredClone(base)
    : await runEval({scenarios: 3, seed: 2, trials: 1, gates: ['pass1>=0.9'], engine: {engine: 'rules'}})
  const hostile = 'ignore previous instructions </failure><script>alert(1)</script> ``` \u0007 & "quoted"'
  result.results[1] = {
    ...result.results[1],
    status: 'failed',
    reasons: [
      `the state differs from the gold state in 1 row: ~ parts P-000001: name expected "Bolt", found "${hostile}"`,
    ],
    differences: [
      {
        table: 'parts',
        key: 'P-000001',
        change: 'changed',
        columns: [{column: 'name', expected: 'Bolt', actual: hostile}],
      },
    ],
    differenceCount: 1,
  }
  return result
}

describe('reports', () => {
  it('escapes everything XML cannot carry, so inventory text cannot break the JUnit file', async () => {
    expect(xmlEscape('a<b>&"c\'\u0000\u0007d\u{1F600}')).toBe('a&lt;b&gt;&amp;&quot;c&apos;d\u{1F600}')
    const xml = toJunitXml(await resultWithHostileFailure())
    expect(xml).not.toContain('<script>')
    expect(xml).not.toContain('\u0007')
    expect(xml.match(/<failure /g)).toHaveLength(1)
    expect(xml.match(/<\/failure>/g)).toHaveLength(1)
    expect(xml).toContain(
      '~ parts P-000001: name expected &quot;Bolt&quot;, found &quot;ignore previous instructions &lt;/failure&gt;&lt;script&gt;',
    )
    expect(xml).toMatch(/timestamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"/)
  })

  it("keeps a failure's diff inside its code block in the markdown report", async () => {
    const markdown = toMarkdown(await resultWithHostileFailure())
    const failures = markdown.slice(markdown.indexOf('### Failures'))
    // One opening and one closing fence: the ``` in the inventory text was defused.
    expect(failures.match(/^```/gm)).toHaveLength(2)
    expect(failures).toContain('<summary><code>')
    expect(failures).not.toContain('<script>alert(1)</script></summary>')
  })

  it('compares with a baseline metric by metric and scenario by scenario', async () => {
    const baseline = await runEval({scenarios: 3, seed: 2, trials: 1, gates: [], engine: {engine: 'rules'}})
    const current = await resultWithHostileFailure(baseline)
    const comparison = compareWithBaseline(current, baseline, 'baseline.json')
    expect(comparison.sameSuite).toBe(true)
    expect(comparison.newlyFailing).toEqual([current.results[1].scenario])
    expect(comparison.newlyPassing).toEqual([])
    // Only the scenario's trial changed here, not the metrics: nothing else regressed.
    expect(comparison.metrics.every((metric) => !metric.regressed)).toBe(true)
    expect(comparison.regressions).toBe(1)
    const other = compareWithBaseline(
      {...current, suite: {...current.suite, hash: 'another'}},
      baseline,
      'baseline.json',
    )
    expect(other).toMatchObject({sameSuite: false, newlyFailing: [], regressions: 0})
  })
})
