import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {DatasetGenerateOutput} from '../../src/cli/output-schemas.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

describe('dataset generate overwrote the shipped training data without a word', () => {
  it(
    'refuses to replace an existing --out (the default is ' + 'datasets/playbook.jsonl) and leaves it as it was',
    async () => {
      const cwd = temporaryDirectory()
      mkdirSync(join(cwd, 'datasets'))
      const shipped = join(cwd, 'datasets', 'playbook.jsonl')
      writeFileSync(shipped, '{"shipped": 1}\n{"shipped": 2}\n')
      const run = await runCli(['dataset', 'generate', '--count', '1', '--eval-count', '0', '--json'], cwd)
      expect(run.exitCode).toBe(2)
      expect(run.json.error.code).toBe('OUTPUT_EXISTS')
      expect(run.json.error.message).toContain(shipped)
      expect(run.json.error.suggestions[0]).toContain('--force')
      expect(readFileSync(shipped, 'utf8')).toBe('{"shipped": 1}\n{"shipped": 2}\n')
    },
  )

  it('refuses when only the eval file exists', async () => {
    const cwd = temporaryDirectory()
    writeFileSync(join(cwd, 'eval.jsonl'), 'kept\n')
    const run = await runCli(
      ['dataset', 'generate', '--count', '1', '--eval-count', '0', '--out', join(cwd, 'new.jsonl'), '--json'],
      cwd,
    )
    expect(run.exitCode).toBe(2)
    expect(run.json.error.message).toContain('eval.jsonl')
    expect(readFileSync(join(cwd, 'eval.jsonl'), 'utf8')).toBe('kept\n')
  })

  it('replaces both files with --force', async () => {
    const cwd = temporaryDirectory()
    const out = join(cwd, 'p.jsonl')
    writeFileSync(out, 'old\n')
    const run = await runCli(
      ['dataset', 'generate', '--count', '2', '--eval-count', '0', '--out', out, '--force', '--json'],
      cwd,
    )
    expect(run.exitCode, run.stderr).toBe(0)
    expect(DatasetGenerateOutput.parse(run.json).train.examples).toBe(2)
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(2)
  })
})
