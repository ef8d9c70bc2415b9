import {readdirSync, readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {createEmbedder} from '../../src/eval/questions/embedder.js'
import {findLlamaBinary} from '../../src/llama/locate.js'
import {startLlamaServer} from '../../src/llama/serve.js'
import {cosineSimilarity} from '../../src/eval/questions/answer-score.js'
import {runQuestionEval} from '../../src/eval/questions/run-questions.js'
import type {Question} from '../../src/eval/questions/question-file.js'
import {temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/*
 * The mechanics of answer-level evals on a real model: the tiny random-weight GGUF answers
 * through node-llama-cpp, and serves as the embedding model too. Its answers mean nothing; what
 * is checked is the plumbing — a model forced (by a grammar) to answer exactly the expected text
 * scores 1 on exact, contains and semantic, because the same text embeds to the same vector.
 */

const FIXTURES = resolve(import.meta.dirname, '../fixtures/questions')

let llamaServer: string | undefined
try {
  llamaServer = (await findLlamaBinary('llama-server')).path
} catch (error) {
  // The only reason to skip the server tests: no binary anywhere. Say so loudly.
  console.warn(
    `SKIPPING eval --questions server tests: ${(error as Error).message}\n  → run \`node bin/run.js llama ` +
      `build\` first.`,
  )
}

/** A GBNF grammar whose only sentence is `text`. */
function literalGrammar(text: string): string {
  return `root ::= ${JSON.stringify(text)}`
}

/** Live llama-server processes this test process started. */
function llamaServerChildren(): number[] {
  return readdirSync('/proc').flatMap((entry) => {
    try {
      const match = /^\d+ \((.*)\) (\S) (\d+)/.exec(readFileSync(`/proc/${entry}/stat`, 'utf8'))
      return match && match[1].startsWith('llama-server') && match[2] !== 'Z' && Number(match[3]) === process.pid
        ? [Number(entry)]
        : []
    } catch {
      return []
    }
  })
}

const forceExpected = (question: Question) => literalGrammar(question.expected)

function tinyModel(): string {
  const model = join(temporaryDirectory(), 'tiny.gguf')
  writeTinyGguf(model, {contextLength: 4096})
  return model
}

describe('eval --questions on the embedded engine (tiny GGUF)', () => {
  it('embeds with node-llama-cpp: the same text gives the same vector, another text another', async () => {
    const embedder = await createEmbedder({model: tinyModel(), kind: 'embedded', threads: 1})
    try {
      const first = await embedder.embed('C = $16')
      const again = await embedder.embed('C = $16')
      const other = await embedder.embed('Domain: (-∞, ∞); Range: [4, ∞)')
      expect(first).toHaveLength(64)
      expect(first).toEqual(again)
      expect(cosineSimilarity(first, again)).toBeCloseTo(1, 9)
      expect(cosineSimilarity(first, other)).toBeLessThan(0.999)
    } finally {
      await embedder.close()
    }
  }, 60_000)

  it('scores a model forced to answer the expected text 1.0 on exact, contains and semantic', async () => {
    const model = tinyModel()
    const result = await runQuestionEval({
      questions: join(FIXTURES, 'eval-samples.jsonl'),
      gates: ['exact>=1', 'contains>=1', 'semantic>=1', 'similarity>=0.999'],
      engine: {engine: 'embedded', model, threads: 1, maxTokens: 64, seed: 1},
      embedding: {model},
      grammarFor: forceExpected,
    })
    expect(
      result.results
        .filter((outcome) => outcome.answer !== outcome.expected)
        .map((outcome) => [outcome.line, outcome.answer, outcome.expected]),
    ).toEqual([])
    expect(result.metrics).toMatchObject({
      questions: 20,
      answered: 20,
      errors: 0,
      exact: 1,
      contains: 1,
      semantic: 1,
      emptyAnswers: 0,
      cutOff: 0,
    })
    expect(result.metrics.similarityMean).toBeCloseTo(1, 9)
    expect(result.metrics.promptTokensPerQuestion).toBeGreaterThan(20)
    expect(result).toMatchObject({
      verdict: 'pass',
      exitCode: 0,
      scoring: {semantic: 'measured', embeddingEngine: 'embedded', embeddingModel: model},
    })
  }, 120_000)

  it('scores an empty answer (a grammar that allows nothing else) 0 on all three', async () => {
    const model = tinyModel()
    const result = await runQuestionEval({
      questions: join(FIXTURES, 'with-context.jsonl'),
      gates: [],
      engine: {engine: 'embedded', model, threads: 1, seed: 1},
      embedding: {model},
      grammarFor: () => 'root ::= ""',
    })
    expect(result.results.map((outcome) => outcome.answer)).toEqual(['', '', ''])
    expect(result.metrics).toMatchObject({exact: 0, contains: 0, semantic: 0, similarityMean: 0, emptyAnswers: 3})
  }, 120_000)

  it('asks a random model free text: scores are computed, and mean nothing', async () => {
    const model = tinyModel()
    const result = await runQuestionEval({
      questions: join(FIXTURES, 'with-context.jsonl'),
      gates: ['errors==0'],
      engine: {engine: 'embedded', model, threads: 1, maxTokens: 16, seed: 1},
      embedding: {model},
    })
    expect(result.metrics).toMatchObject({questions: 3, answered: 3, errors: 0})
    for (const outcome of result.results) {
      expect(typeof outcome.answer).toBe('string')
      expect(outcome.similarity).toBeGreaterThanOrEqual(-1)
      expect(outcome.similarity).toBeLessThanOrEqual(1)
      expect(outcome.semantic).toBe(outcome.similarity! >= 0.8)
      expect(outcome.usage.completionTokens).toBeGreaterThan(0)
      expect(outcome.usage.completionTokens).toBeLessThanOrEqual(16)
    }
    expect(result).toMatchObject({verdict: 'pass', exitCode: 0})
  }, 120_000)
})

describe.runIf(llamaServer)('eval --questions on the server engine (tiny GGUF, real llama-server)', () => {
  it(
    'scores forced answers 1.0 with embeddings from a ' + 'llama-server it starts with --embedding, and stops it',
    async () => {
      const model = tinyModel()
      await using server = await startLlamaServer({model, port: 0, ctxSize: 4096, threads: 1, restart: false})
      const result = await runQuestionEval({
        questions: join(FIXTURES, 'with-context.jsonl'),
        gates: ['exact>=1', 'contains>=1', 'semantic>=1'],
        engine: {engine: 'server', url: server.url, maxTokens: 64, seed: 1, threads: 1},
        embedding: {model},
        grammarFor: forceExpected,
      })
      expect(result.results.map((outcome) => outcome.answer)).toEqual(['18%', '3 days', 'Paris'])
      expect(result.metrics).toMatchObject({exact: 1, contains: 1, semantic: 1, errors: 0})
      expect(result.metrics.similarityMean).toBeCloseTo(1, 9)
      expect(result.scoring).toMatchObject({embeddingEngine: 'server', embeddingModel: model})
      expect(result).toMatchObject({verdict: 'pass', exitCode: 0})
      // The embedding server is gone; only the chat model's server (stopped at the end of the block) is left.
      expect(llamaServerChildren()).toEqual([server.pid])
    },
    180_000,
  )

  it(
    'embeds through --embedding-url: the same text gives the same ' + 'vector, and free answers get a similarity',
    async () => {
      const model = tinyModel()
      await using chat = await startLlamaServer({model, port: 0, ctxSize: 4096, threads: 1, restart: false})
      await using embeddings = await startLlamaServer({
        model,
        port: 0,
        ctxSize: 2048,
        threads: 1,
        restart: false,
        extraArgs: ['--embedding'],
      })
      const embedder = await createEmbedder({url: embeddings.url, kind: 'server'})
      const first = await embedder.embed('Paris')
      expect(first).toHaveLength(64)
      expect(await embedder.embed('Paris')).toEqual(first)
      // Without pooling the vector is the last token's; in a random model that is mostly the token itself,
      // so compare texts that end differently ("3 days" would end in "s" like "Paris").
      expect(cosineSimilarity(first, await embedder.embed('18%'))).toBeLessThan(0.999)
      const result = await runQuestionEval({
        questions: join(FIXTURES, 'with-context.jsonl'),
        gates: ['errors==0'],
        engine: {engine: 'server', url: chat.url, maxTokens: 16, seed: 1},
        embedding: {url: embeddings.url},
      })
      expect(
        result.results.every(
          (outcome) => outcome.similarity !== null && outcome.similarity >= -1 && outcome.similarity <= 1,
        ),
      ).toBe(true)
      expect(result.scoring).toMatchObject({
        semantic: 'measured',
        embeddingEngine: 'server',
        embeddingModel: embeddings.url,
      })
      expect(result.exitCode).toBe(0)
    },
    180_000,
  )
})
