import {resolve} from 'node:path'

import {Listr} from 'listr2'

import {createEngine, type EngineOptions} from '../../engines/create-engine.js'
import type {Engine} from '../../engines/engine.js'
import type {Completer} from '../../engines/model-session.js'
import {UserError} from '../../errors.js'
import type {ProgressRenderer} from '../../llama/build.js'
import {listrOptions} from '../../llama/progress.js'
import {renderQuestion} from '../../prompt/question.js'
import {writeAtomically} from '../../util/write-atomically.js'
import {containsMatch, cosineSimilarity, exactMatch, NORMALIZATIONS, type Normalization} from './answer-score.js'
import {createEmbedder, type Embedder} from './embedder.js'
import {loadQuestionFile, type Question} from './question-file.js'
import {
  compareQuestionMetrics,
  computeQuestionMetrics,
  evaluateQuestionGates,
  loadQuestionBaseline,
  questionGates,
} from './question-metrics.js'
import {toQuestionJunitXml, toQuestionMarkdown} from './question-report.js'
import type {QuestionEvalResult, QuestionOutcome} from './question-result.js'

/*
 * `invagent eval --questions FILE`: asks a model every question of a question file through the
 * same prompt renderer and chat template as the audit, scores each answer (exact, contains,
 * semantic@τ), and decides as the scenario eval does: exit 0 when every gate passes, 1 when one
 * fails, 2 when the eval could not run (bad input, engine unavailable, more engine errors than
 * --max-errors).
 */

export const DEFAULT_SEMANTIC_THRESHOLD = 0.8
/** Answers are short: a question's answer is a value or a sentence, not a trajectory. */
export const DEFAULT_ANSWER_TOKENS = 64

export interface QuestionEvalOptions {
  /** The question file. */
  questions: string
  gates: readonly string[]
  /** The model under test: embedded or server. */
  engine: EngineOptions
  normalization?: Normalization
  /** τ of semantic@τ, a cosine similarity in [-1, 1]. */
  semanticThreshold?: number
  /** The embedding model (GGUF) or an embedding endpoint; without either, semantic is not measured. */
  embedding?: {model?: string; url?: string; contextSize?: number}
  baseline?: string
  junit?: string
  report?: string
  /** Questions the engine may fail on before the run counts as broken (exit 2). */
  maxErrors?: number
  /** A completer instead of `engine` (tests). */
  completer?: Completer & {name?: string}
  /** An embedder instead of `embedding` (tests). */
  embedder?: Embedder
  /** A GBNF grammar per question (tests force answers with it); by default answers are free text. */
  grammarFor?: (question: Question) => string | null
  signal?: AbortSignal
  renderer?: ProgressRenderer
}

function checkOptions(options: QuestionEvalOptions): void {
  const threshold = options.semanticThreshold ?? DEFAULT_SEMANTIC_THRESHOLD
  if (!Number.isFinite(threshold) || threshold < -1 || threshold > 1)
    throw new UserError(`--semantic-threshold must be a cosine similarity from -1 to 1, got ${threshold}`, {
      suggestions: [`The default is ${DEFAULT_SEMANTIC_THRESHOLD}.`],
    })
  if (options.normalization !== undefined && !NORMALIZATIONS.includes(options.normalization))
    throw new UserError(`--normalize must be one of ${NORMALIZATIONS.join(', ')}, got "${options.normalization}"`)
  if (options.embedding?.model !== undefined && options.embedding.url !== undefined)
    throw new UserError('give either --embedding-model or --embedding-url, not both')
  if (options.completer) return
  if (options.engine.engine !== 'embedded' && options.engine.engine !== 'server') {
    throw new UserError(`--questions asks a model, but the engine is "${options.engine.engine}"`, {
      suggestions: ['Use --engine embedded --model PATH, or --engine server --url URL.'],
    })
  }
}

/** One question: ask, then score. An engine failure is this question's error, not the run's. */
async function askQuestion(
  question: Question,
  completer: Completer,
  embed: ((text: string) => Promise<number[]>) | undefined,
  options: QuestionEvalOptions,
): Promise<QuestionOutcome> {
  const normalization = options.normalization ?? 'fold'
  const threshold = options.semanticThreshold ?? DEFAULT_SEMANTIC_THRESHOLD
  const base = {
    line: question.line,
    query: question.query,
    context: question.context ?? null,
    expected: question.expected,
  }
  const started = performance.now()
  let completion: Awaited<ReturnType<Completer['complete']>>
  try {
    completion = await completer.complete(renderQuestion(question), {
      grammar: options.grammarFor ? options.grammarFor(question) : null,
    })
  } catch (error) {
    options.signal?.throwIfAborted()
    return {
      ...base,
      status: 'error',
      answer: null,
      error: (error as Error).message,
      exact: false,
      contains: false,
      similarity: null,
      semantic: null,
      cutOff: false,
      usage: {promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0},
      latencyMs: Math.round(performance.now() - started),
    }
  }
  const latencyMs = Math.round(performance.now() - started)
  const answer = completion.text
  let similarity: number | null = null
  if (embed) {
    try {
      // An empty answer means nothing: it is not embedded, and it is as far as can be from any answer.
      similarity = answer.trim() === '' ? 0 : cosineSimilarity(await embed(answer), await embed(question.expected))
    } catch (error) {
      options.signal?.throwIfAborted()
      return {
        ...base,
        status: 'error',
        answer,
        error: `embedding: ${(error as Error).message}`,
        exact: false,
        contains: false,
        similarity: null,
        semantic: null,
        cutOff: completion.hitTokenLimit,
        usage: completion.usage,
        latencyMs,
      }
    }
  }
  return {
    ...base,
    status: 'answered',
    answer,
    exact: exactMatch(answer, question.expected, normalization),
    contains: containsMatch(answer, question.expected, normalization),
    similarity,
    semantic: similarity === null ? null : similarity >= threshold,
    cutOff: completion.hitTokenLimit,
    usage: completion.usage,
    latencyMs,
  }
}

/** Runs an answer-level eval; see the file comment. Bad input throws before any model is loaded. */
export async function runQuestionEval(options: QuestionEvalOptions): Promise<QuestionEvalResult> {
  const startedAt = new Date()
  const started = performance.now()
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`
  checkOptions(options)
  const file = loadQuestionFile(options.questions)
  const baseline = options.baseline === undefined ? undefined : loadQuestionBaseline(options.baseline)
  const semanticMeasured =
    options.embedder !== undefined || options.embedding?.model !== undefined || options.embedding?.url !== undefined
  const gates = questionGates(options.gates, {semanticMeasured, hasBaseline: baseline !== undefined})
  const engineName = options.completer?.name ?? options.engine.engine
  const engineOptions = {...options.engine, maxTokens: options.engine.maxTokens ?? DEFAULT_ANSWER_TOKENS}

  let engine: Engine | undefined
  let embedder = options.embedder
  const results: QuestionOutcome[] = []
  try {
    if (!options.completer) engine = await createEngine(engineOptions)
    const completer = options.completer ?? (engine as unknown as Completer)
    if (!embedder && semanticMeasured) {
      embedder = await createEmbedder({
        ...options.embedding,
        kind: engineName === 'server' ? 'server' : 'embedded',
        threads: options.engine.threads,
      })
    }
    const embeddings = new Map<string, Promise<number[]>>()
    const embed = embedder
      ? (text: string) => {
          let vector = embeddings.get(text)
          if (!vector) {
            vector = embedder!.embed(text)
            embeddings.set(text, vector)
          }
          return vector
        }
      : undefined
    const total = file.questions.length
    const tasks = new Listr(
      [
        {
          title: `Ask ${total} question${total === 1 ? '' : 's'} on the ${engineName} engine`,
          task: async (_context, task) => {
            const every = Math.max(1, Math.floor(total / 20))
            let contains = 0
            for (const question of file.questions) {
              options.signal?.throwIfAborted()
              const outcome = await askQuestion(question, completer, embed, options)
              results.push(outcome)
              contains += outcome.contains ? 1 : 0
              const done = results.length
              if (options.renderer === 'default' || done % every === 0 || done === total)
                task.output = `${done}/${total} questions, ${contains} containing the expected answer (${elapsed()})`
            }
          },
        },
      ],
      listrOptions(options.renderer ?? 'silent'),
    )
    await tasks.run()
  } finally {
    await embedder?.close()
    await engine?.close?.()
  }

  const metrics = computeQuestionMetrics(results)
  const gateResults = evaluateQuestionGates(gates, metrics, baseline?.metrics)
  const maxErrors = options.maxErrors ?? 0
  const verdict = metrics.errors > maxErrors ? 'error' : gateResults.every((gate) => gate.passed) ? 'pass' : 'fail'
  const exitCode = verdict === 'pass' ? 0 : verdict === 'fail' ? 1 : 2
  const failedGates = gateResults.filter((gate) => !gate.passed).map((gate) => gate.expression)
  const figure = (value: number | null) => (value === null ? 'not measured' : value.toFixed(3))
  const threshold = options.semanticThreshold ?? DEFAULT_SEMANTIC_THRESHOLD
  const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`
  const figures = [
    `exact ${figure(metrics.exact)}, contains ${figure(metrics.contains)}`,
    `semantic@${threshold} ${figure(metrics.semantic)} over ${plural(metrics.questions, 'question')}`,
    plural(metrics.errors, 'error'),
  ].join(', ')
  const summary = [
    verdict === 'error'
      ? `error: the engine failed on ${plural(metrics.errors, 'question')}, more than the ${maxErrors} tolerated`
      : verdict === 'fail'
        ? `fail: gate${failedGates.length === 1 ? '' : 's'} ${failedGates.join(', ')} failed`
        : gateResults.length === 0
          ? 'pass: no gate given'
          : `pass: all ${plural(gateResults.length, 'gate')} passed`,
    figures,
  ].join('; ')
  const result: QuestionEvalResult = {
    kind: 'questions',
    verdict,
    exitCode,
    summary,
    questions: {
      file: file.path,
      hash: file.hash,
      count: file.questions.length,
      withContext: file.questions.filter((question) => question.context !== undefined).length,
      duplicates: file.duplicates,
    },
    engine: {name: engineName, model: options.engine.model ?? null, url: options.engine.url ?? null},
    scoring: {
      normalization: options.normalization ?? 'fold',
      semanticThreshold: threshold,
      semantic: embedder ? 'measured' : 'not measured',
      embeddingModel: embedder?.source ?? null,
      embeddingEngine: embedder?.kind ?? null,
    },
    startedAt: startedAt.toISOString(),
    wallMs: Math.round(performance.now() - started),
    metrics,
    gates: gateResults,
    baseline: null,
    results,
    files: {junit: null, report: null},
  }
  if (baseline && options.baseline) {
    const compared = compareQuestionMetrics(metrics, baseline.metrics)
    result.baseline = {
      file: resolve(options.baseline),
      sameFile: baseline.questions.hash === file.hash,
      metrics: compared,
      regressions: compared.filter((entry) => entry.regressed).length,
    }
  }
  if (options.junit) result.files.junit = writeAtomically(options.junit, toQuestionJunitXml(result))
  if (options.report) result.files.report = writeAtomically(options.report, toQuestionMarkdown(result))
  return result
}
