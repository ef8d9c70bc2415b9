import {formatRatio, headline, metricRows} from '../eval/markdown.js'
import type {EvalResult} from '../eval/result.js'
import {renderTable} from './table.js'

const MAX_FAILURES_LISTED = 15

const short = (value: number | null) => (value === null ? 'n/a' : String(Math.round(value * 1000) / 1000))

/** The human view of an eval: verdict, gates, metrics, root causes that fell short, failing trials. */
export function renderEvalResult(result: EvalResult): string {
  const lines: string[] = []
  lines.push(
    `suite ${result.suite.name} v${result.suite.version} (${result.suite.hash}): ${result.suite.scenarios} scenarios × ${result.trials} trial(s), engine ${result.engine.name}${result.engine.model ? ` (${result.engine.model})` : ''}, ${result.jobs} job(s), ${(result.wallMs / 1000).toFixed(1)} s`,
    '',
  )
  lines.push(
    renderTable(
      ['gate', 'value', 'result'],
      result.gates.map((gate) => [
        `${gate.expression}${gate.implicit ? ' (default)' : ''}`,
        short(gate.value),
        gate.passed ? 'pass' : `FAIL${gate.reason ? ` (${gate.reason})` : ''}`,
      ]),
      80,
    ),
    '',
  )
  lines.push(renderTable(['metric', 'value'], metricRows(result.metrics)), '')
  if (result.baseline) {
    const regressed = result.baseline.metrics.filter((entry) => entry.regressed)
    lines.push(
      `baseline ${result.baseline.file} (${result.baseline.engine}): ${result.baseline.regressions} regression(s)${regressed.length > 0 ? ` — ${regressed.map((entry) => `${entry.metric} ${short(entry.baseline)} → ${short(entry.current)}`).join(', ')}` : ''}`,
    )
    if (result.baseline.newlyFailing.length > 0) lines.push(`newly failing: ${result.baseline.newlyFailing.join(', ')}`)
    lines.push('')
  }
  const weak = result.byRootCause.filter(
    (entry) => entry.metrics.faultPassRate !== null && entry.metrics.faultPassRate < 1,
  )
  if (weak.length > 0) {
    lines.push(
      renderTable(
        ['rule/root cause', 'expected', 'fault pass', 'pass^1'],
        weak.map((entry) => [
          entry.key,
          entry.expected ?? '',
          formatRatio(entry.metrics.faultPassRate),
          formatRatio(entry.metrics.pass1),
        ]),
        70,
      ),
      '',
    )
  }
  const failing = result.results.filter((trial) => trial.status !== 'passed')
  for (const trial of failing.slice(0, MAX_FAILURES_LISTED)) {
    lines.push(
      `${trial.status === 'error' ? 'ERROR' : 'FAIL '} ${trial.scenario} #${trial.trial}: ${trial.status === 'error' ? `${trial.error!.kind}: ${trial.error!.message}` : trial.reasons.join(' / ')}`,
    )
  }
  if (failing.length > MAX_FAILURES_LISTED)
    lines.push(`… and ${failing.length - MAX_FAILURES_LISTED} more (see --junit, --report or --json)`)
  if (failing.length > 0) lines.push('')
  for (const [label, file] of [
    ['junit', result.files.junit],
    ['report', result.files.report],
    ['artifacts', result.files.artifacts],
  ] as const)
    if (file) lines.push(`${label}: ${file}`)
  lines.push(`${headline(result)} — ${result.summary}`)
  return lines.join('\n')
}
