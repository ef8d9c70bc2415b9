import {readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import type {ChatMessage} from '../../src/prompt/render.js'
import type {CompleteOptions, Completer} from '../../src/engines/model-session.js'
import {containsMatch, cosineSimilarity, exactMatch, normalizeAnswer} from '../../src/eval/questions/answer-score.js'
import type {Embedder} from '../../src/eval/questions/embedder.js'
import {vectorOf} from '../../src/eval/questions/embedder.js'
import {loadQuestionFile} from '../../src/eval/questions/question-file.js'
import {QuestionEvalOutput} from '../../src/eval/questions/question-result.js'
import {runQuestionEval} from '../../src/eval/questions/run-questions.js'
import {QUESTION_SYSTEM_PROMPT, renderQuestion} from '../../src/prompt/question.js'
import {temporaryDirectory} from '../helpers/cli.js'

const FIXTURES = resolve(import.meta.dirname, '../fixtures/questions')

/** Answers from a table keyed by the user turn; records what it was asked. */
class ScriptedAnswers implements Completer {
  readonly name = 'scripted'
  readonly asked: Array<{messages: ChatMessage[]; options?: CompleteOptions}> = []
  constructor(private readonly answer: (user: string) => string | Error) {}
  async complete(messages: ChatMessage[], options?: CompleteOptions) {
    this.asked.push({messages, options})
    const answer = this.answer(messages.at(-1)!.content)
    if (answer instanceof Error) throw answer
    return {
      text: answer,
      usage: {promptTokens: 10, completionTokens: answer.length, cachedPromptTokens: 0},
      hitTokenLimit: false,
    }
  }
}

/** A bag-of-characters embedding: deterministic, and texts sharing characters come out similar. */
class CharacterEmbedder implements Embedder {
  readonly kind = 'embedded'
  readonly source = 'characters'
  embedded: string[] = []
  async embed(text: string) {
    this.embedded.push(text)
    const vector = Array.from({length: 64}, () => 0)
    for (const char of text.toLowerCase()) vector[char.codePointAt(0)! % 64]++
    return vector
  }
  async close() {}
}

describe('answer scoring', () => {
  it('folds case and trims by default, trims only or compares bytes when asked', () => {
    expect(normalizeAnswer('  Straße \n', 'fold')).toBe('strasse')
    expect(exactMatch(' 18% ', '18%', 'fold')).toBe(true)
    expect(exactMatch('PARIS', 'Paris', 'fold')).toBe(true)
    expect(exactMatch('PARIS', 'Paris', 'trim')).toBe(false)
    expect(exactMatch(' Paris', 'Paris', 'trim')).toBe(true)
    expect(exactMatch(' Paris', 'Paris', 'none')).toBe(false)
    // é as one code point and as e + combining accent are the same text after NFC.
    expect(exactMatch('caf\u00e9', 'cafe\u0301', 'fold')).toBe(true)
  })

  it('"contains" finds the expected answer inside a longer one; an empty answer never matches', () => {
    expect(containsMatch('The growth was 18% YoY.', '18%', 'fold')).toBe(true)
    expect(containsMatch('The growth was 18 percent.', '18%', 'fold')).toBe(false)
    expect(containsMatch('', '18%', 'fold')).toBe(false)
    expect(exactMatch('', '18%', 'none')).toBe(false)
  })

  it('computes cosine similarity, 0 for an empty vector, and refuses vectors of two sizes', () => {
    expect(cosineSimilarity([1, 2, 3], [1, 2, 3])).toBeCloseTo(1, 12)
    expect(cosineSimilarity([1, 0], [0, 1])).toBe(0)
    expect(cosineSimilarity([1, 0], [-2, 0])).toBe(-1)
    expect(cosineSimilarity([3, 4], [4, 3])).toBeCloseTo(24 / 25, 12)
    expect(cosineSimilarity([0, 0], [1, 1])).toBe(0)
    expect(() => cosineSimilarity([1], [1, 2])).toThrow(/different sizes/)
  })

  it("reads llama-server /embedding answers: a pooled vector, or the last token's without pooling", () => {
    expect(vectorOf([{embedding: [[0.1, 0.2]]}])).toEqual([0.1, 0.2])
    expect(
      vectorOf([
        {
          embedding: [
            [1, 1],
            [2, 2],
            [3, 3],
          ],
        },
      ]),
    ).toEqual([3, 3])
    expect(vectorOf({embedding: [0.5, 0.5]})).toEqual([0.5, 0.5])
    expect(vectorOf([])).toBeUndefined()
  })
})

describe('question prompts', () => {
  it('put the context before the question, and ask without one when there is none', () => {
    expect(renderQuestion({query: 'How much?', context: 'Revenue grew 18%.'})).toEqual([
      {role: 'system', content: QUESTION_SYSTEM_PROMPT},
      {role: 'user', content: 'Context: Revenue grew 18%.\n\nQuestion: How much?'},
    ])
    expect(renderQuestion({query: 'How much?'})[1].content).toBe('How much?')
  })
})

describe('question files', () => {
  it('reads the real file as found: every line asked, the repeated one counted', () => {
    const file = loadQuestionFile(join(FIXTURES, 'eval-samples.jsonl'))
    expect(file.questions).toHaveLength(20)
    expect(file.duplicates).toEqual([{line: 19, firstLine: 6}])
    expect(file.questions[0]).toEqual({
      line: 1,
      query: 'Evaluate f(x) where f(x)=2x+1 for x<0 and f(x)=x^2 for x≥0 at x=-2.',
      expected: 'f(-2) = -3',
    })
    expect(file.hash).toMatch(/^[0-9a-f]{16}$/)
  })

  it('refuses a file with broken lines, naming each file:line:col', () => {
    expect(() => loadQuestionFile(join(FIXTURES, 'broken.jsonl'))).toThrow(
      /4 lines are not valid questions:\nbroken\.jsonl:2:1: \(root\): missing required property "expected"\n/,
    )
    try {
      loadQuestionFile(join(FIXTURES, 'broken.jsonl'))
    } catch (error) {
      expect((error as Error).message).toContain('broken.jsonl:5:1: comment line')
      expect((error as {exitCode: number}).exitCode).toBe(2)
    }
  })

  it('refuses a training file given as questions', () => {
    expect(() => loadQuestionFile(join(FIXTURES, 'sft-train.jsonl'))).toThrow(
      /sft-train\.jsonl:1:1: a trajectory example, not a question/,
    )
  })
})

describe('runQuestionEval (scripted answers)', () => {
  const file = join(FIXTURES, 'with-context.jsonl')

  it('asks every question through the renderer, free text, and scores it', async () => {
    const answers = new ScriptedAnswers((user) =>
      user.includes('revenue') ? '18%' : user.includes('late') ? 'Up to 3 days.' : 'Lyon',
    )
    const embedder = new CharacterEmbedder()
    const result = await runQuestionEval({
      questions: file,
      gates: ['contains>=0.6', 'exact>=0.5'],
      engine: {engine: 'embedded'},
      completer: answers,
      embedder,
      semanticThreshold: 0.9,
    })
    expect(answers.asked.map((call) => call.options)).toEqual([{grammar: null}, {grammar: null}, {grammar: null}])
    expect(answers.asked[0].messages).toEqual(
      renderQuestion({
        query: 'What was the revenue growth year over year?',
        context: 'Revenue grew 18% year over year to $1.2B.',
      }),
    )
    expect(result.results.map((outcome) => [outcome.exact, outcome.contains, outcome.semantic])).toEqual([
      [true, true, true],
      [false, true, false],
      [false, false, false],
    ])
    expect(result.results[0].similarity).toBeCloseTo(1, 12)
    expect(result.metrics).toMatchObject({questions: 3, answered: 3, errors: 0, emptyAnswers: 0})
    expect(result.metrics.exact).toBeCloseTo(1 / 3, 12)
    expect(result.metrics.contains).toBeCloseTo(2 / 3, 12)
    expect(result.metrics.semantic).toBeCloseTo(1 / 3, 12)
    expect(result.gates.map((gate) => [gate.expression, gate.passed])).toEqual([
      ['contains>=0.6', true],
      ['exact>=0.5', false],
    ])
    expect(result).toMatchObject({
      verdict: 'fail',
      exitCode: 1,
      kind: 'questions',
      scoring: {semantic: 'measured', normalization: 'fold', semanticThreshold: 0.9},
    })
    expect(result.questions).toMatchObject({count: 3, withContext: 2, duplicates: []})
    // Each distinct text is embedded once.
    expect(embedder.embedded.filter((text) => text === '18%')).toHaveLength(1)
    expect(QuestionEvalOutput.parse(result)).toEqual(result)
  })

  it(
    'without an embedding model reports semantic as not measured, ' + 'and refuses a semantic gate before asking',
    async () => {
      const answers = new ScriptedAnswers(() => '18%')
      const result = await runQuestionEval({
        questions: file,
        gates: [],
        engine: {engine: 'embedded'},
        completer: answers,
      })
      expect(result.metrics.semantic).toBeNull()
      expect(result.metrics.similarityMean).toBeNull()
      expect(result.results.every((outcome) => outcome.similarity === null && outcome.semantic === null)).toBe(true)
      expect(result.scoring).toMatchObject({semantic: 'not measured', embeddingModel: null})
      expect(result.summary).toContain('semantic@0.8 not measured')
      expect(result).toMatchObject({verdict: 'pass', exitCode: 0})

      const unasked = new ScriptedAnswers(() => '18%')
      await expect(
        runQuestionEval({questions: file, gates: ['semantic>=0.5'], engine: {engine: 'embedded'}, completer: unasked}),
      ).rejects.toThrow(/needs the semantic metric, which is not measured/)
      expect(unasked.asked).toEqual([])
    },
  )

  it('scores an empty answer 0 on all three metrics', async () => {
    const embedder = new CharacterEmbedder()
    const result = await runQuestionEval({
      questions: file,
      gates: ['contains>0'],
      engine: {engine: 'embedded'},
      completer: new ScriptedAnswers(() => ''),
      embedder,
    })
    expect(result.metrics).toMatchObject({exact: 0, contains: 0, semantic: 0, similarityMean: 0, emptyAnswers: 3})
    // An empty answer is never embedded (it has no meaning to compare), so nothing was.
    expect(embedder.embedded).toEqual([])
    expect(result.exitCode).toBe(1)
  })

  it('counts engine failures apart and exits 2 past --max-errors', async () => {
    const failing = () =>
      new ScriptedAnswers((user) => (user.includes('France') ? new Error('the prompt is 9000 tokens') : '18%'))
    const broken = await runQuestionEval({
      questions: file,
      gates: ['contains>=0.5'],
      engine: {engine: 'embedded'},
      completer: failing(),
    })
    expect(broken.metrics).toMatchObject({questions: 3, answered: 2, errors: 1, contains: 0.5})
    expect(broken.results[2]).toMatchObject({status: 'error', answer: null, error: 'the prompt is 9000 tokens'})
    expect(broken).toMatchObject({verdict: 'error', exitCode: 2})
    const tolerated = await runQuestionEval({
      questions: file,
      gates: ['contains>=0.5'],
      engine: {engine: 'embedded'},
      completer: failing(),
      maxErrors: 1,
    })
    expect(tolerated).toMatchObject({verdict: 'pass', exitCode: 0})
  })

  it('refuses the rules engine, selectors, unknown metrics and a bad threshold before asking anything', async () => {
    await expect(runQuestionEval({questions: file, gates: [], engine: {engine: 'rules'}})).rejects.toThrow(
      /--questions asks a model, but the engine is "rules"/,
    )
    const completer = new ScriptedAnswers(() => '')
    await expect(
      runQuestionEval({questions: file, gates: ['contains[heldout]>=0.5'], engine: {engine: 'embedded'}, completer}),
    ).rejects.toThrow(/no selectors/)
    await expect(
      runQuestionEval({questions: file, gates: ['contain>=0.5'], engine: {engine: 'embedded'}, completer}),
    ).rejects.toThrow(/unknown metric "contain" — did you mean "contains"\?/)
    await expect(
      runQuestionEval({questions: file, gates: ['pass1>=0.5'], engine: {engine: 'embedded'}, completer}),
    ).rejects.toThrow(/unknown metric "pass1"/)
    await expect(
      runQuestionEval({questions: file, gates: [], engine: {engine: 'embedded'}, completer, semanticThreshold: 1.5}),
    ).rejects.toThrow(/from -1 to 1, got 1.5/)
    expect(completer.asked).toEqual([])
  })

  it('writes JUnit and markdown, and compares with a baseline', async () => {
    const directory = temporaryDirectory()
    const good = await runQuestionEval({
      questions: file,
      gates: [],
      engine: {engine: 'embedded'},
      completer: new ScriptedAnswers((user) =>
        user.includes('revenue') ? '18%' : user.includes('late') ? '3 days' : 'Paris',
      ),
    })
    writeFileSync(join(directory, 'baseline.json'), JSON.stringify(good))
    const result = await runQuestionEval({
      questions: file,
      gates: ['contains>=baseline-0.1'],
      baseline: join(directory, 'baseline.json'),
      engine: {engine: 'embedded'},
      completer: new ScriptedAnswers((user) => (user.includes('revenue') ? '18%' : 'no idea')),
      junit: join(directory, 'answers.xml'),
      report: join(directory, 'answers.md'),
    })
    expect(result.gates[0]).toMatchObject({threshold: 0.9, passed: false})
    expect(result.baseline).toMatchObject({sameFile: true, regressions: 3})
    // 'no idea' is longer than the answers it replaced: more completion tokens is a cost regression.
    expect(result.baseline!.metrics.filter((entry) => entry.regressed).map((entry) => entry.metric)).toEqual([
      'exact',
      'contains',
      'completion_tokens_per_question',
    ])
    expect(result.baseline!.metrics.find((entry) => entry.metric === 'contains')).toMatchObject({
      baseline: 1,
      regressed: true,
    })
    const xml = readFileSync(join(directory, 'answers.xml'), 'utf8')
    expect(xml).toContain('<testsuites name="invagent eval --questions" tests="4" failures="3" errors="0"')
    expect(xml).toContain(
      '<failure type="WrongAnswer" message="missed contains: expected &quot;3 days&quot;, answered ' +
        '&quot;no idea&quot;"',
    )
    const markdown = readFileSync(join(directory, 'answers.md'), 'utf8')
    expect(markdown).toContain('## invagent eval --questions: ❌ 1 of 1 gate failed')
    expect(markdown).toContain('| contains | 0.333 | 1 | -0.667 ⚠️ regression |')
    expect(markdown).toContain('| 3 | What is the capital of France? | Paris | `"no idea"` | missed contains |')
    expect(result.files.junit).toBe(join(directory, 'answers.xml'))
  })
})
