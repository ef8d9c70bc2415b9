import {
  describeOutcome,
  heldMetrics,
  missed,
  questionHeadline,
  questionMetricRows,
} from '../eval/questions/question-report.js'
import type {QuestionEvalResult} from '../eval/questions/question-result.js'
import {renderTable} from './table.js'

const MAX_MISSES_LISTED = 15

const short = (value: number | null) => (value === null ? 'n/a' : String(Math.round(value * 1000) / 1000))

/** The human view of an answer-level eval: what ran, gates, metrics, the first questions missed, the verdict. */
export function renderQuestionEvalResult(result: QuestionEvalResult): string {
  const lines: string[] = []
  const semantic =
    result.scoring.semantic === 'measured'
      ? `semantic@${result.scoring.semanticThreshold} by ${result.scoring.embeddingModel}`
      : 'semantic not measured (no --embedding-model)'
  const {questions} = result
  const engine = `engine ${result.engine.name}${result.engine.model ? ` (${result.engine.model})` : ''}`
  const seconds = `${(result.wallMs / 1000).toFixed(1)} s`
  const scoring = `normalization ${result.scoring.normalization}, ${semantic}`
  lines.push(`${questions.file} (${questions.hash}): ${questions.count} questions, ${engine}, ${scoring}, ${seconds}`)
  const repeated = questions.duplicates.length
  if (repeated > 0)
    lines.push(`${repeated} line(s) repeat an earlier question and are asked again (dataset validate lists them)`)
  lines.push('')
  if (result.gates.length > 0)
    lines.push(
      renderTable(
        ['gate', 'value', 'result'],
        result.gates.map((gate) => [
          gate.expression,
          short(gate.value),
          gate.passed ? 'pass' : `FAIL${gate.reason ? ` (${gate.reason})` : ''}`,
        ]),
        80,
      ),
      '',
    )
  lines.push(renderTable(['metric', 'value'], questionMetricRows(result.metrics, result.scoring.semanticThreshold)), '')
  if (result.baseline) {
    const regressed = result.baseline.metrics.filter((entry) => entry.regressed)
    const changes = regressed.map((entry) => `${entry.metric} ${short(entry.baseline)} → ${short(entry.current)}`)
    const list = changes.length > 0 ? ` — ${changes.join(', ')}` : ''
    lines.push(`baseline ${result.baseline.file}: ${result.baseline.regressions} regression(s)${list}`, '')
  }
  const held = heldMetrics(result)
  const misses = result.results.filter((outcome) => outcome.status === 'error' || missed(outcome, held).length > 0)
  for (const outcome of misses.slice(0, MAX_MISSES_LISTED))
    lines.push(
      `${outcome.status === 'error' ? 'ERROR' : 'MISS '} line ${outcome.line}: ${describeOutcome(outcome, held)}`,
    )
  if (misses.length > MAX_MISSES_LISTED)
    lines.push(`… and ${misses.length - MAX_MISSES_LISTED} more (see --junit, --report or --json)`)
  if (misses.length > 0) lines.push('')
  for (const [label, file] of [
    ['junit', result.files.junit],
    ['report', result.files.report],
  ] as const)
    if (file) lines.push(`${label}: ${file}`)
  lines.push(`${questionHeadline(result)} — ${result.summary}`)
  return lines.join('\n')
}
