import {xmlEscape} from '../junit.js'
import {table} from '../markdown.js'
import type {QuestionEvalResult, QuestionMetrics, QuestionOutcome} from './question-result.js'

/*
 * Reports of an answer-level eval: JUnit XML (one test case per question, one per gate) and a
 * markdown report for a pull-request comment. A question's test case fails when it misses an
 * answer metric that a gate is on (exact, contains, semantic), or "contains" when no gate names
 * one: the failing cases are then the questions that pulled the gated figure down.
 */

const MAX_MISSES_SHOWN = 20
const ANSWER_METRICS = ['exact', 'contains', 'semantic'] as const
type AnswerMetric = (typeof ANSWER_METRICS)[number]

/** The answer metrics a question is held to in JUnit and in the lists of misses. */
export function heldMetrics(result: Pick<QuestionEvalResult, 'gates'>): AnswerMetric[] {
  const gated = ANSWER_METRICS.filter((metric) => result.gates.some((gate) => gate.metric === metric))
  return gated.length > 0 ? gated : ['contains']
}

/** The metrics an answered question missed, of those it is held to. */
export function missed(outcome: QuestionOutcome, metrics: readonly AnswerMetric[]): AnswerMetric[] {
  return metrics.filter((metric) => outcome[metric] !== true)
}

export function formatRatio(value: number | null): string {
  return value === null ? 'not measured' : value.toFixed(3)
}

/** `3 questions`, `1 question`. */
const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`

/** XML attributes from a record, values escaped. */
const attributes = (values: Record<string, string | number>) =>
  Object.entries(values)
    .map(([name, value]) => `${name}="${xmlEscape(String(value))}"`)
    .join(' ')

const formatNumber = (value: number | null) =>
  value === null ? 'n/a' : Number.isInteger(value) ? String(value) : value.toFixed(1)
const clip = (text: string, length: number) => (text.length > length ? `${text.slice(0, length - 1)}…` : text)

/** Metric rows for the human and markdown views. */
export function questionMetricRows(metrics: QuestionMetrics, threshold: number): Array<[string, string]> {
  return [
    ['questions', String(metrics.questions)],
    ['exact', formatRatio(metrics.exact)],
    ['contains', formatRatio(metrics.contains)],
    [`semantic@${threshold}`, formatRatio(metrics.semantic)],
    ['mean similarity', formatRatio(metrics.similarityMean)],
    ['empty answers', String(metrics.emptyAnswers)],
    ['cut off at --max-tokens', String(metrics.cutOff)],
    ['engine errors', String(metrics.errors)],
    ['prompt tokens per question', formatNumber(metrics.promptTokensPerQuestion)],
    ['completion tokens per question', formatNumber(metrics.completionTokensPerQuestion)],
    ['latency p50 (ms)', formatNumber(metrics.latencyP50Ms)],
    ['latency p95 (ms)', formatNumber(metrics.latencyP95Ms)],
  ]
}

/** One line on a question: what it missed, what was expected, what came back. */
export function describeOutcome(outcome: QuestionOutcome, metrics: readonly AnswerMetric[]): string {
  if (outcome.status === 'error') return `error: ${outcome.error}`
  const similarity = outcome.similarity === null ? '' : `, similarity ${outcome.similarity.toFixed(3)}`
  const answer = JSON.stringify(clip(outcome.answer ?? '', 200))
  const texts = `expected ${JSON.stringify(outcome.expected)}, answered ${answer}`
  return `missed ${missed(outcome, metrics).join(', ')}${similarity}: ${texts}`
}

export function questionHeadline(result: Pick<QuestionEvalResult, 'verdict' | 'gates' | 'metrics'>): string {
  const failed = result.gates.filter((gate) => !gate.passed).length
  if (result.verdict === 'error')
    return `⚠️ the eval could not run completely (${plural(result.metrics.errors, 'engine error')}): no verdict`
  if (result.verdict === 'fail') return `❌ ${failed} of ${plural(result.gates.length, 'gate')} failed`
  if (result.gates.length === 0) return '✅ no gate given'
  return `✅ all ${plural(result.gates.length, 'gate')} passed`
}

const seconds = (ms: number) => (ms / 1000).toFixed(3)

export function toQuestionJunitXml(result: QuestionEvalResult): string {
  const held = heldMetrics(result)
  const cases = result.results.map((outcome) => {
    const name = `line ${outcome.line}: ${clip(outcome.query, 100)}`
    const time = seconds(outcome.latencyMs)
    const open = `    <testcase ${attributes({classname: 'invagent.eval.questions', name, time})}`
    if (outcome.status === 'error') {
      const error = outcome.error ?? 'error'
      const element = `<error ${attributes({type: 'engine', message: clip(error, 300)})}>${xmlEscape(error)}</error>`
      return `${open}>\n      ${element}\n    </testcase>`
    }
    if (missed(outcome, held).length === 0) return `${open}/>`
    const details = describeOutcome(outcome, held)
    const message = clip(details, 300)
    const failure = `<failure ${attributes({type: 'WrongAnswer', message})}>${xmlEscape(details)}</failure>`
    return `${open}>\n      ${failure}\n    </testcase>`
  })
  const failures = result.results.filter(
    (outcome) => outcome.status === 'answered' && missed(outcome, held).length > 0,
  ).length
  const errors = result.metrics.errors
  const gateFailures = result.gates.filter((gate) => !gate.passed).length
  const gateCases = result.gates.map((gate) => {
    const open = `    <testcase classname="invagent.eval.gates" name="${xmlEscape(gate.expression)}" time="0"`
    if (gate.passed) return `${open}/>`
    const needs = `needs ${gate.operator} ${gate.threshold ?? 'n/a'}${gate.reason ? ` (${gate.reason})` : ''}`
    const message = `${gate.metric} = ${gate.value ?? 'n/a'}, ${needs}`
    const failure = `<failure ${attributes({type: 'GateFailed', message})}>${xmlEscape(message)}</failure>`
    return `${open}>\n      ${failure}\n    </testcase>`
  })
  const properties = [
    ['engine', result.engine.name],
    ['model', result.engine.model ?? result.engine.url ?? ''],
    ['questions', `${result.questions.file} (${result.questions.hash})`],
    ['normalization', result.scoring.normalization],
    [
      'semantic',
      result.scoring.semantic === 'measured'
        ? `threshold ${result.scoring.semanticThreshold}, ${result.scoring.embeddingModel}`
        : 'not measured',
    ],
    ['exact', String(result.metrics.exact ?? '')],
    ['contains', String(result.metrics.contains ?? '')],
  ]
  const timestamp = result.startedAt.slice(0, 19)
  const time = seconds(result.wallMs)
  const suiteName = `invagent eval --questions: ${result.questions.file} (${result.engine.name})`
  const all = {
    name: 'invagent eval --questions',
    tests: cases.length + gateCases.length,
    failures: failures + gateFailures,
  }
  const questionSuite = {name: suiteName, tests: cases.length, failures, errors, skipped: 0, time, timestamp}
  const gateSuite = {
    name: 'invagent eval --questions: gates',
    tests: gateCases.length,
    failures: gateFailures,
    errors: 0,
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites ${attributes({...all, errors, time})}>`,
    `  <testsuite ${attributes(questionSuite)}>`,
    '    <properties>',
    ...properties.map(([name, value]) => `      <property name="${name}" value="${xmlEscape(value)}"/>`),
    '    </properties>',
    ...cases,
    '  </testsuite>',
    `  <testsuite ${attributes({...gateSuite, skipped: 0, time: 0, timestamp})}>`,
    ...gateCases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n')
}

export function toQuestionMarkdown(result: QuestionEvalResult): string {
  const held = heldMetrics(result)
  const lines: string[] = [`## invagent eval --questions: ${questionHeadline(result)}`, '']
  const semantic =
    result.scoring.semantic === 'measured'
      ? `semantic@${result.scoring.semanticThreshold} with \`${result.scoring.embeddingModel}\``
      : 'semantic not measured (no embedding model)'
  const {questions} = result
  const engine = `Engine **${result.engine.name}**${result.engine.model ? ` (${result.engine.model})` : ''}`
  const repeated = questions.duplicates.length
  const counts = `${questions.count} questions, ${questions.withContext} with context, ${repeated} repeated`
  const file = `\`${questions.file}\` (\`${questions.hash}\`, ${counts})`
  const seconds = `${(result.wallMs / 1000).toFixed(1)} s`
  lines.push(`${engine} · ${file} · normalization ${result.scoring.normalization} · ${semantic} · ${seconds}`, '')
  if (result.gates.length > 0) {
    lines.push('### Gates', '')
    lines.push(
      table(
        ['gate', 'value', 'result'],
        result.gates.map((gate) => [
          `\`${gate.expression}\``,
          gate.value === null ? 'n/a' : formatNumber(Math.round(gate.value * 1000) / 1000),
          gate.passed ? '✅ pass' : `❌ fail${gate.reason ? ` (${gate.reason})` : ''}`,
        ]),
      ),
      '',
    )
  }
  lines.push('### Metrics', '')
  if (result.baseline) {
    const compared = new Map(result.baseline.metrics.map((entry) => [entry.metric, entry]))
    const names: Record<string, string> = {
      exact: 'exact',
      contains: 'contains',
      [`semantic@${result.scoring.semanticThreshold}`]: 'semantic',
      'mean similarity': 'similarity',
      'empty answers': 'empty_answers',
      'engine errors': 'errors',
    }
    const rows = questionMetricRows(result.metrics, result.scoring.semanticThreshold).map(([name, value]) => {
      const entry = compared.get(names[name] ?? '')
      if (!entry) return [name, value, '', '']
      const delta = entry.delta === null ? 'n/a' : `${entry.delta >= 0 ? '+' : ''}${entry.delta.toFixed(3)}`
      return [
        name,
        value,
        entry.baseline === null ? 'n/a' : formatNumber(Math.round(entry.baseline * 1000) / 1000),
        `${delta}${entry.regressed ? ' ⚠️ regression' : ''}`,
      ]
    })
    lines.push(table(['metric', 'this run', 'baseline', 'change'], rows), '')
    if (!result.baseline.sameFile) lines.push('The baseline scored another question file.', '')
  } else
    lines.push(table(['metric', 'value'], questionMetricRows(result.metrics, result.scoring.semanticThreshold)), '')
  const misses = result.results.filter((outcome) => outcome.status === 'error' || missed(outcome, held).length > 0)
  if (misses.length > 0) {
    const shown = misses.length > MAX_MISSES_SHOWN ? `, first ${MAX_MISSES_SHOWN} shown` : ''
    lines.push(`### Missed (${plural(misses.length, 'question')} on ${held.join(', ')}${shown})`, '')
    lines.push(
      table(
        ['line', 'question', 'expected', 'answer', 'why'],
        misses.slice(0, MAX_MISSES_SHOWN).map((outcome) => [
          String(outcome.line),
          clip(outcome.query, 80),
          clip(outcome.expected, 60),
          // As a JSON string: control characters a model emits stay visible and cannot break the table.
          outcome.answer === null ? '' : `\`${clip(JSON.stringify(outcome.answer), 80).replaceAll('`', "'")}\``,
          outcome.status === 'error'
            ? `error: ${clip(outcome.error ?? '', 80)}`
            : `missed ${missed(outcome, held).join(', ')}`,
        ]),
      ),
      '',
    )
  }
  return `${lines.join('\n').trimEnd()}\n`
}
