import {existsSync, readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {EvalCommandOutput, QuestionEvalOutput} from '../../src/cli/output-schemas.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/** oclif wraps error messages at the terminal width and prefixes each line with " ›": undo both. */
function unwrapped(stderr: string): string {
  return stderr.replace(/\s*\n\s*›\s+/g, ' ').replace(/^\s*›\s+/, '')
}

const ROOT = resolve(import.meta.dirname, '../..')
const FIXTURES = join(ROOT, 'test/fixtures/questions')
/** The untrimmed question file, where a copy of the shared material sits beside the checkout (CI). */
const SHARED_QUESTIONS = join(
  process.env.INVAGENT_SHARED_DIR ?? resolve(ROOT, '../shared'),
  'external/lms-agentic-ai/eval_samples.jsonl',
)

function tinyModel(cwd: string): string {
  const model = join(cwd, 'tiny.gguf')
  writeTinyGguf(model, {contextLength: 4096})
  return model
}

/*
 * `invagent eval --questions` as a user runs it: the built CLI, the tiny random GGUF as both
 * the model under test and the embedding model, the real question file. A random model's
 * scores mean nothing; the gates here are chosen so the verdict does not depend on them.
 */
describe('invagent eval --questions', () => {
  it('runs the real question file end to end: JSON, JUnit, markdown, exit 0 when the gates pass', async () => {
    const cwd = temporaryDirectory()
    const model = tinyModel(cwd)
    const run = await runCli(
      [
        'eval',
        '--questions',
        join(FIXTURES, 'eval-samples.jsonl'),
        '--engine',
        'embedded',
        '--model',
        model,
        '--embedding-model',
        model,
        '--threads',
        '1',
        '--max-tokens',
        '16',
        '--gate',
        'errors==0',
        '--gate',
        'contains>=0',
        '--junit',
        'out/answers.xml',
        '--report',
        'out/answers.md',
        '--json',
      ],
      cwd,
    )
    expect(run.exitCode, run.stderr).toBe(0)
    const result = QuestionEvalOutput.parse(run.json)
    expect(EvalCommandOutput.parse(run.json)).toEqual(result)
    expect(result).toMatchObject({
      kind: 'questions',
      verdict: 'pass',
      exitCode: 0,
      engine: {name: 'embedded', model},
      scoring: {normalization: 'fold', semanticThreshold: 0.8, semantic: 'measured', embeddingEngine: 'embedded'},
    })
    expect(result.questions).toMatchObject({count: 20, withContext: 0, duplicates: [{line: 19, firstLine: 6}]})
    expect(result.results).toHaveLength(20)
    expect(result.metrics.semantic).not.toBeNull()
    expect(result.results.every((outcome) => outcome.similarity !== null && outcome.usage.completionTokens <= 16)).toBe(
      true,
    )
    const xml = readFileSync(join(cwd, 'out', 'answers.xml'), 'utf8')
    expect(xml.match(/<testcase /g)).toHaveLength(20 + 2)
    expect(readFileSync(join(cwd, 'out', 'answers.md'), 'utf8')).toContain(
      '## invagent eval --questions: ✅ all 2 gates passed',
    )

    const human = await runCli(
      [
        'eval',
        '--questions',
        join(FIXTURES, 'with-context.jsonl'),
        '--engine',
        'embedded',
        '--model',
        model,
        '--threads',
        '1',
        '--max-tokens',
        '16',
      ],
      cwd,
    )
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toContain('semantic not measured (no --embedding-model)')
    expect(human.stdout).toMatch(
      new RegExp(
        String.raw`✅ no gate given — pass: no gate given; exact [0-9.]+, contains [0-9.]+, semantic@0\.8 ` +
          String.raw`not measured over 3 questions, 0 errors`,
      ),
    )
  }, 180_000)

  it('exits 1 when a gate fails, and 2 when the eval cannot run', async () => {
    const cwd = temporaryDirectory()
    const model = tinyModel(cwd)
    const failed = await runCli(
      [
        'eval',
        '--questions',
        join(FIXTURES, 'with-context.jsonl'),
        '--engine',
        'embedded',
        '--model',
        model,
        '--threads',
        '1',
        '--max-tokens',
        '16',
        '--gate',
        'errors>=1',
        '--json',
      ],
      cwd,
    )
    expect(failed.exitCode, failed.stderr).toBe(1)
    expect(QuestionEvalOutput.parse(failed.json)).toMatchObject({
      verdict: 'fail',
      gates: [{expression: 'errors>=1', value: 0, passed: false}],
    })

    const broken = await runCli(
      ['eval', '--questions', join(FIXTURES, 'broken.jsonl'), '--engine', 'embedded', '--model', model],
      cwd,
    )
    expect(broken.exitCode).toBe(2)
    expect(unwrapped(broken.stderr)).toContain('broken.jsonl:4:40: /context: must be string')

    const rules = await runCli(['eval', '--questions', join(FIXTURES, 'with-context.jsonl')], cwd)
    expect(rules.exitCode).toBe(2)
    expect(unwrapped(rules.stderr)).toContain('--questions asks a model, but the engine is "rules"')

    const semantic = await runCli(
      [
        'eval',
        '--questions',
        join(FIXTURES, 'with-context.jsonl'),
        '--engine',
        'embedded',
        '--model',
        model,
        '--gate',
        'semantic>=0.5',
      ],
      cwd,
    )
    expect(semantic.exitCode).toBe(2)
    expect(unwrapped(semantic.stderr)).toContain(
      'needs the semantic metric, which is not measured without an embedding model',
    )

    const both = await runCli(['eval', '--questions', join(FIXTURES, 'with-context.jsonl'), '--scenarios', '3'], cwd)
    expect(both.exitCode).toBe(2)
  }, 180_000)

  it.runIf(existsSync(SHARED_QUESTIONS))(
    'runs the untrimmed question file as found (100 lines, 21 repeated)',
    async () => {
      const cwd = temporaryDirectory()
      const model = tinyModel(cwd)
      const run = await runCli(
        [
          'eval',
          '--questions',
          SHARED_QUESTIONS,
          '--engine',
          'embedded',
          '--model',
          model,
          '--embedding-model',
          model,
          '--threads',
          '1',
          '--max-tokens',
          '16',
          '--gate',
          'errors==0',
          '--json',
        ],
        cwd,
      )
      expect(run.exitCode, run.stderr).toBe(0)
      const result = QuestionEvalOutput.parse(run.json)
      expect(result.questions.count).toBe(100)
      expect(result.questions.duplicates).toHaveLength(21)
      expect(result.metrics).toMatchObject({questions: 100, answered: 100, errors: 0})
    },
    300_000,
  )
})

describe('invagent dataset validate on question files', () => {
  it('reports the duplicate and the leakage against the training file, file:line:col', async () => {
    const cwd = temporaryDirectory()
    const run = await runCli(
      ['dataset', 'validate', join(FIXTURES, 'eval-samples.jsonl'), '--train', join(FIXTURES, 'sft-train.jsonl')],
      cwd,
    )
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain(
      `${join(FIXTURES, 'eval-samples.jsonl')}:3:1: also in the training data at sft-train.jsonl:1 (same instruction)`,
    )
    expect(run.stdout).toContain(`${join(FIXTURES, 'eval-samples.jsonl')}:19:1: same content as eval-samples.jsonl:6`)
    // A question has no trajectory: no table of steps (every question would sit in a "0 steps" row).
    expect(run.stdout).not.toMatch(/^steps\s+examples/m)
    expect(run.stdout).toContain('eval-samples.jsonl: 20 lines, 20 examples, 3 problems')
  })
})
