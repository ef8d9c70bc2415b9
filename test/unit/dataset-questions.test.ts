import {join, resolve} from 'node:path'
import {readFileSync, writeFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {checkExample} from '../../src/dataset/check.js'
import {detectFormat} from '../../src/dataset/schema.js'
import {validateDatasetFiles} from '../../src/dataset/validate.js'
import {temporaryDirectory} from '../helpers/cli.js'

const FIXTURES = resolve(import.meta.dirname, '../fixtures/questions')
const fixture = (name: string) => join(FIXTURES, name)

/*
 * The question format of answer-level evals, {query, context?, expected}: recognised by
 * `dataset validate` with the same file:line:col problems, duplicate and leakage checks as the
 * other formats. eval-samples.jsonl is the first 20 lines of a real question file as found
 * (line 19 repeats line 6); sft-train.jsonl the first 4 lines of the training file beside it.
 */
describe('the question format', () => {
  it('is told apart from the other formats by its keys', () => {
    expect(detectFormat({query: 'q', expected: 'a'})).toBe('question')
    expect(detectFormat({query: 'q', context: 'c', expected: 'a'})).toBe('question')
    // A line with only one of the two is still read as a question, so the missing field is named.
    expect(detectFormat({query: 'q'})).toBe('question')
    expect(detectFormat({instruction: 'q', tools: [], trajectory: [], final_answer: 'a'})).toBe('trajectory')
  })

  it('rejects a whitespace-only expected answer (it would be "contained" in every answer)', () => {
    const {problems} = checkExample({query: 'q', expected: '  '}, 'question')
    expect(problems.map((problem) => [problem.pointer, problem.message])).toEqual([
      ['/expected', '/expected: only white space — every answer would "contain" it'],
    ])
    expect(checkExample({query: 'q', context: 'c', expected: 'a'}, 'question').problems).toEqual([])
  })

  it("reports the real file's duplicate and nothing else", async () => {
    const report = await validateDatasetFiles([fixture('eval-samples.jsonl')])
    expect(report.examples).toBe(20)
    expect(report.summary.byFormat).toEqual({question: 19})
    expect(
      report.problems.map((problem) => `${problem.line}:${problem.column} ${problem.code}: ${problem.message}`),
    ).toEqual([
      '19:1 duplicate-content: same content as eval-samples.jsonl:6 — drop the duplicate (--fix keeps the first)',
    ])
  })

  it("reports leakage against a training file's instructions (--train)", async () => {
    const report = await validateDatasetFiles([fixture('eval-samples.jsonl')], {
      trainFiles: [fixture('sft-train.jsonl')],
    })
    const leaks = report.problems.filter((problem) => problem.code === 'leakage')
    expect(leaks.map((problem) => [problem.line, problem.message])).toEqual([
      [
        3,
        'also in the training data at sft-train.jsonl:1 (same instruction) — train/eval leakage: the ' +
          'model has seen it; remove it from one of them',
      ],
      [
        18,
        'also in the training data at sft-train.jsonl:2 (same instruction) — train/eval leakage: the ' +
          'model has seen it; remove it from one of them',
      ],
    ])
  })

  it('finds a question with context in training data as an instruction with that input, once', async () => {
    const directory = temporaryDirectory()
    const questions = join(directory, 'questions.jsonl')
    const train = join(directory, 'train.jsonl')
    writeFileSync(
      questions,
      '{"query": "What was the growth?", "context": "Revenue grew 18%.", "expected": "18%"}\n{"query": ' +
        '"Who signs?", "expected": "The registrar"}\n',
    )
    writeFileSync(
      train,
      '{"instruction": "What was the growth?", "input": "Revenue grew 18%.", "output": ' +
        '"resolve(summary=\\"z\\")"}\n{"instruction": "Who signs?", "input": "", "output": ' +
        '"resolve(summary=\\"z\\")"}\n',
    )
    const leaks = async () =>
      (await validateDatasetFiles([questions], {trainFiles: [train]})).problems
        .filter((problem) => problem.code === 'leakage')
        .map((problem) => [problem.line, problem.message.split(' (')[0]])
    expect(await leaks()).toEqual([
      [1, 'also in the training data at train.jsonl:1'],
      [2, 'also in the training data at train.jsonl:2'],
    ])
    // The question alone is in the training data too: still one problem for the line.
    writeFileSync(
      train,
      '{"instruction": "What was the growth?", "input": {}, "output": "resolve(summary=\\"z\\")"}\n',
      {flag: 'a'},
    )
    expect((await leaks()).filter(([line]) => line === 1)).toHaveLength(1)
  })

  it('reports the same leakage from the training side (--eval a question file)', async () => {
    const report = await validateDatasetFiles([fixture('sft-train.jsonl')], {
      evalFiles: [fixture('eval-samples.jsonl')],
    })
    expect(report.problems.filter((problem) => problem.code === 'leakage').map((problem) => problem.line)).toEqual([
      1, 2,
    ])
  })

  it('points at each broken line and column, and --fix keeps question lines as questions', async () => {
    const out = join(temporaryDirectory(), 'clean.jsonl')
    const report = await validateDatasetFiles([fixture('broken.jsonl')], {fix: out})
    expect(
      report.problems.map((problem) => `${problem.line}:${problem.column} ${problem.code}: ${problem.message}`),
    ).toEqual([
      '2:1 schema: (root): missing required property "expected"',
      '2:29 schema: (root): unknown property "expeced" — did you mean "expected"?',
      '3:41 schema: /expected: only white space — every answer would "contain" it',
      '4:40 schema: /context: must be string',
      '5:1 comment: comment line (JSONL allows no comments) — remove it (--fix drops it)',
      '6:1 duplicate-content: same content as broken.jsonl:1 — drop the duplicate (--fix keeps the first)',
    ])
    expect(readFileSync(out, 'utf8')).toBe('{"query": "What is 2 + 2?", "expected": "4"}\n')
    expect(report.fix!.converted).toBe(0)
  })
})
