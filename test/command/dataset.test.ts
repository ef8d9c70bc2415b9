import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {DatasetConvertOutput, DatasetGenerateOutput, DatasetValidateOutput} from '../../src/cli/output-schemas.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

const ROOT = resolve(import.meta.dirname, '../..')
const FIXTURES = join(ROOT, 'test/fixtures/dataset')
const EXTERNAL = resolve(ROOT, '../shared/external/lms-agentic-ai')

describe('invagent dataset (CLI)', () => {
  it('validate exits 0 on a clean file and 1 with problems, printing file:line:col and the summary', async () => {
    const cwd = temporaryDirectory()
    const clean = await runCli(['dataset', 'validate', join(FIXTURES, 'valid.jsonl')], cwd)
    expect(clean.exitCode, clean.stderr).toBe(0)
    expect(clean.stdout).toContain('clean: 3 examples, no problems.')
    expect(clean.stdout).toMatch(/rule\s+examples/)

    const broken = await runCli(['dataset', 'validate', join(FIXTURES, 'tools.jsonl'), '--json'], cwd)
    expect(broken.exitCode).toBe(1)
    const report = DatasetValidateOutput.parse(broken.json)
    expect(report.ok).toBe(false)
    expect(report.problemCounts).toEqual({
      'unknown-tool': 1,
      'invalid-args': 2,
      unterminated: 1,
      'terminal-not-last': 1,
      inconsistent: 1,
    })
  })

  it('validate reports a file where almost half the lines are exact duplicates', async () => {
    const cwd = temporaryDirectory()
    const lines = readFileSync(join(FIXTURES, 'seeds-trajectory.jsonl'), 'utf8').trim().split('\n').slice(0, 3)
    // 3 distinct examples, then 2 of them repeated: 2 of 5 lines are duplicates.
    const file = join(cwd, 'repeated.jsonl')
    writeFileSync(file, [...lines, lines[0], lines[2]].join('\n') + '\n')
    const result = await runCli(['dataset', 'validate', file], cwd)
    expect(result.exitCode).toBe(1)
    expect(result.stdout).toContain(
      'repeated.jsonl:4:1: same content as repeated.jsonl:1 — drop the duplicate (--fix keeps the first)',
    )
    expect(result.stdout).toContain('2 of 5 examples (40.0%) repeat an earlier one exactly.')
  })

  it.skipIf(!existsSync(EXTERNAL))(
    'validate reads the trajectory-format files in shared/external and finds their duplicates and leakage',
    async () => {
      const cwd = temporaryDirectory()
      const result = await runCli(
        [
          'dataset',
          'validate',
          join(EXTERNAL, 'sft_samples.jsonl'),
          '--eval',
          join(EXTERNAL, 'eval_samples.jsonl'),
          '--json',
        ],
        cwd,
      )
      expect(result.exitCode).toBe(1)
      const report = DatasetValidateOutput.parse(result.json)
      expect(report.summary.byFormat).toEqual({trajectory: report.cleanExamples})
      expect(report.problemCounts['duplicate-content']! / report.examples).toBeGreaterThan(0.4)
      expect(report.problemCounts.leakage).toBeGreaterThan(0)
    },
  )

  it('generate writes both splits and validate passes them', async () => {
    const cwd = temporaryDirectory()
    const result = await runCli(
      [
        'dataset',
        'generate',
        '--count',
        '26',
        '--eval-count',
        '26',
        '--seed',
        '3',
        '--out',
        join(cwd, 'p.jsonl'),
        '--json',
      ],
      cwd,
    )
    expect(result.exitCode, result.stderr).toBe(0)
    const generated = DatasetGenerateOutput.parse(result.json)
    expect(generated.eval.file).toBe(join(cwd, 'eval.jsonl'))
    const validated = await runCli(
      ['dataset', 'validate', join(cwd, 'p.jsonl'), join(cwd, 'eval.jsonl'), '--eval', join(cwd, 'eval.jsonl')],
      cwd,
    )
    expect(validated.exitCode, validated.stdout).toBe(0)
  })

  it('convert reports each line it cannot convert and why, and exits 1', async () => {
    const cwd = temporaryDirectory()
    const result = await runCli(
      [
        'dataset',
        'convert',
        join(FIXTURES, 'seeds-instruction.jsonl'),
        '--from',
        'instruction',
        '--out',
        join(cwd, 'c.jsonl'),
        '--json',
      ],
      cwd,
    )
    expect(result.exitCode).toBe(1)
    const converted = DatasetConvertOutput.parse(result.json)
    expect(converted.converted).toBe(1)
    expect(converted.failed).toEqual([
      {line: 2, reason: '/output: args of adjust_quantity: missing required property "reason"'},
      {
        line: 3,
        reason:
          '/output: cannot parse the call to remap_transaction_part: expected a quoted string, a number, true/false or null, found "P-000001, re"',
      },
    ])
    const example = JSON.parse(readFileSync(join(cwd, 'c.jsonl'), 'utf8'))
    expect(example.meta).toEqual({
      rule: 'negative_on_hand',
      rootCause: 'cache_drift',
      split: 'train',
      source: 'converted:instruction',
    })
    expect(example.trajectory.map((step: {action: {tool: string}}) => step.action.tool)).toEqual([
      'get_ledger_balance',
      'recompute_on_hand',
      'resolve',
    ])
  })
})
