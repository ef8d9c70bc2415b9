import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {validateDatasetFiles} from '../../src/dataset/validate.js'
import {UserError} from '../../src/errors.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

const ROOT = resolve(import.meta.dirname, '../..')
const VALID = join(ROOT, 'test/fixtures/dataset/valid.jsonl')
const validLines = () => readFileSync(VALID, 'utf8').trim().split('\n')

describe('dataset tools gave false confidence', () => {
  it(
    'validate --fix on a file none of whose examples can be kept wrote an empty file; now it writes none ' +
      'and fails',
    async () => {
      const cwd = temporaryDirectory()
      const input = join(cwd, 'broken.jsonl')
      writeFileSync(input, '{"id": \n[1, 2\n{"instruction": 42}\n')
      const out = join(cwd, 'clean.jsonl')
      const report = await validateDatasetFiles([input], {fix: out})
      expect(report.ok).toBe(false)
      expect(report.fix!.written).toBe(0)
      expect(existsSync(out)).toBe(false)
      const nothingKept = report.problems.find((problem) => problem.code === 'nothing-kept')
      expect(nothingKept).toMatchObject({file: out, line: 0, column: 0})
      expect(nothingKept!.message).toContain('kept none of the 3 example(s)')
    },
  )

  it.each([
    ['an empty file', ''],
    ['only blank lines and comments', '\n   \n// nothing here\n'],
  ])('validated %s as clean (exit 0); an empty dataset is an error', async (_what, content) => {
    const cwd = temporaryDirectory()
    const file = join(cwd, 'empty.jsonl')
    writeFileSync(file, content)
    const report = await validateDatasetFiles([file])
    expect(report.ok).toBe(false)
    expect(report.problems.filter((problem) => problem.code === 'empty')).toEqual([
      {file, line: 0, column: 0, code: 'empty', message: expect.stringContaining('no example in this file')},
    ])
    const run = await runCli(['dataset', 'validate', file], cwd)
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain(`${file}: no example in this file`)
  })

  it(
    'dropped the whole first example of a file with a UTF-8 BOM; now the BOM is reported and stripped by ' + '--fix',
    async () => {
      const cwd = temporaryDirectory()
      const input = join(cwd, 'bom.jsonl')
      writeFileSync(input, `\uFEFF${validLines().join('\n')}\n`)
      const out = join(cwd, 'clean.jsonl')
      const report = await validateDatasetFiles([input], {fix: out})
      expect(report.problems.map((problem) => [problem.code, problem.line, problem.column])).toEqual([['bom', 1, 1]])
      expect(report.problems[0].message).toContain('byte order mark')
      expect(report.fix!.written).toBe(validLines().length)
      expect(report.fix!.repaired).toEqual([{file: input, line: 1, what: 'byte order mark removed'}])
      expect(readFileSync(out, 'utf8')).toBe(`${validLines().join('\n')}\n`)
      expect((await validateDatasetFiles([out])).ok).toBe(true)
    },
  )

  it('validated a file given both as the dataset and as --eval as clean; now that is an error', async () => {
    const error = await validateDatasetFiles([VALID], {evalFiles: [VALID]}).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(UserError)
    expect((error as UserError).code).toBe('SAME_FILE_AS_EVAL')
    const run = await runCli(['dataset', 'validate', VALID, '--eval', VALID, '--json'], temporaryDirectory())
    expect(run.exitCode).toBe(2)
    expect(run.json.error.code).toBe('SAME_FILE_AS_EVAL')
  })

  it('still checks an eval file given alongside the training file, as the shipped datasets are checked', async () => {
    const cwd = temporaryDirectory()
    const evalFile = join(cwd, 'eval.jsonl')
    writeFileSync(evalFile, `${validLines()[0]}\n`)
    const report = await validateDatasetFiles([VALID, evalFile], {evalFiles: [evalFile]})
    expect(report.problemCounts.leakage).toBeGreaterThan(0)
    expect(report.problems.find((problem) => problem.code === 'leakage')!.file).toBe(VALID)
  })
})
