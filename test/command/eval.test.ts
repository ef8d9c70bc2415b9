import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {EvalOutput} from '../../src/cli/output-schemas.js'
import {reservePort} from '../../src/llama/port.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

/** oclif wraps error messages at the terminal width and prefixes each line with " ›": undo both. */
function unwrapped(stderr: string): string {
  return stderr.replace(/\s*\n\s*›\s+/g, ' ').replace(/^\s*›\s+/, '')
}

/*
 * The exit code is the verdict: 0 every gate passed, 1 a gate failed, 2 the eval itself could
 * not run. Each is produced here by a real run of the built CLI.
 */
describe('invagent eval', () => {
  it('exits 0 when every gate passes, and writes JUnit, markdown and JSON', async () => {
    const cwd = temporaryDirectory()
    const run = await runCli(
      [
        'eval',
        '--scenarios',
        '12',
        '--seed',
        '3',
        '--gate',
        'pass1>=0.95',
        '--gate',
        'resolution>=0.95',
        '--junit',
        'out/eval.xml',
        '--report',
        'out/eval.md',
        '--json',
      ],
      cwd,
    )
    expect(run.exitCode, run.stderr).toBe(0)
    const result = EvalOutput.parse(run.json)
    expect(result).toMatchObject({
      verdict: 'pass',
      exitCode: 0,
      trials: 1,
      engine: {name: 'rules', profile: 'standard'},
    })
    expect(result.suite.scenarios).toBe(12)
    expect(result.metrics.pass1).toBe(1)
    expect(result.metrics.unsafe).toBe(0)
    expect(result.gates.map((gate) => [gate.expression, gate.passed, gate.implicit])).toEqual([
      ['pass1>=0.95', true, false],
      ['resolution>=0.95', true, false],
      ['unsafe==0', true, true],
    ])
    expect(result.results).toHaveLength(12)
    const xml = readFileSync(join(cwd, 'out', 'eval.xml'), 'utf8')
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true)
    expect(xml.match(/<testcase /g)).toHaveLength(12 + 3)
    expect(xml).toContain('<testsuites name="invagent eval" tests="15" failures="0" errors="0"')
    const markdown = readFileSync(join(cwd, 'out', 'eval.md'), 'utf8')
    expect(markdown).toContain('## invagent eval: ✅ all 3 gates passed')
    expect(markdown).toContain('| `pass1>=0.95` | 1 | ✅ pass |')
    expect(result.files.junit).toBe(join(cwd, 'out', 'eval.xml'))

    const human = await runCli(['eval', '--scenarios', '4', '--seed', '3'], cwd)
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toContain('unsafe==0 (default)')
    expect(human.stdout).toMatch(
      /✅ all 1 gate passed — pass: all 1 gates passed; pass\^1 1\.000 over 4 scenarios × 1 trial/,
    )
  })

  it('exits 1 when a gate fails, and shows the regressions against a baseline', async () => {
    const cwd = temporaryDirectory()
    const good = await runCli(['eval', '--scenarios', '10', '--seed', '4', '--json'], cwd)
    expect(good.exitCode).toBe(0)
    writeFileSync(join(cwd, 'baseline.json'), good.stdout)
    // The observe profile allows no write: every fault that needs a fix stays broken.
    const run = await runCli(
      [
        'eval',
        '--scenarios',
        '10',
        '--seed',
        '4',
        '--profile',
        'observe',
        '--gate',
        'pass1>=0.9',
        '--gate',
        'pass1>=baseline-0.05',
        '--baseline',
        'baseline.json',
        '--report',
        'eval.md',
        '--artifacts',
        'failed',
        '--json',
      ],
      cwd,
    )
    expect(run.exitCode, run.stderr).toBe(1)
    const result = EvalOutput.parse(run.json)
    expect(result.verdict).toBe('fail')
    expect(result.metrics.unsafe).toBe(0)
    expect(result.metrics.resolutionRate).toBe(0)
    expect(result.gates.filter((gate) => !gate.passed).map((gate) => gate.expression)).toEqual([
      'pass1>=0.9',
      'pass1>=baseline-0.05',
    ])
    expect(result.gates[1].threshold).toBeCloseTo(0.95, 9)
    const comparison = result.baseline!
    expect(comparison.sameSuite).toBe(true)
    expect(comparison.metrics.find((metric) => metric.metric === 'pass1')).toMatchObject({
      baseline: 1,
      current: result.metrics.pass1,
      regressed: true,
    })
    const failing = [
      ...new Set(result.results.filter((trial) => trial.status === 'failed').map((trial) => trial.scenario)),
    ]
    expect(comparison.newlyFailing.sort()).toEqual(failing.sort())
    expect(comparison.regressions).toBeGreaterThan(failing.length)
    expect(readFileSync(join(cwd, 'eval.md'), 'utf8')).toContain('**Newly failing scenarios:**')
    // Each failing trial left its database and hash-chained audit log for inspection.
    expect(existsSync(join(cwd, 'failed', failing[0], 'trial-1.db'))).toBe(true)
    expect(existsSync(join(cwd, 'failed', failing[0], 'trial-1.audit.jsonl'))).toBe(true)
  })

  it('exits 2 when the eval cannot run: engine unavailable, invalid suite, bad gate', async () => {
    const cwd = temporaryDirectory()
    const port = await reservePort('127.0.0.1', 0)
    const down = await runCli(
      ['eval', '--engine', 'server', '--url', `http://127.0.0.1:${port}`, '--scenarios', '3', '--gate', 'pass1>=0.9'],
      cwd,
    )
    expect(down.exitCode).toBe(2)
    expect(unwrapped(down.stderr)).toContain(`the model server at http://127.0.0.1:${port}`)

    writeFileSync(
      join(cwd, 'suite.json'),
      JSON.stringify({
        name: 's',
        version: 1,
        scenarios: [{id: 'a', seed: 1, faults: [{rule: 'negative_on_hand', rootCause: 'receipt_stuck'}]}],
      }),
    )
    const invalid = await runCli(['eval', '--suite', 'suite.json'], cwd)
    expect(invalid.exitCode).toBe(2)
    expect(unwrapped(invalid.stderr)).toContain(
      '"receipt_stuck" is not a root cause of negative_on_hand — did you mean "receipt_stuck_pending"?',
    )

    const gate = await runCli(['eval', '--scenarios', '3', '--gate', 'pass>=0.9'], cwd)
    expect(gate.exitCode).toBe(2)
    expect(unwrapped(gate.stderr)).toContain('unknown metric "pass"')

    const model = await runCli(
      ['eval', '--engine', 'embedded', '--model', join(cwd, 'missing.gguf'), '--scenarios', '2'],
      cwd,
    )
    expect(model.exitCode).toBe(2)

    const flags = await runCli(['eval', '--trials', '0'], cwd)
    expect(flags.exitCode).toBe(2)
  })
})
