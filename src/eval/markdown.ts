import {failureDetails} from './junit.js'
import type {Breakdown, EvalResult, Metrics} from './result.js'

/*
 * The markdown report, for a pull-request comment: the verdict first, then the gates, the
 * headline metrics (with the baseline's values and the change when there is one), the
 * breakdown by root cause, and the first failures with their state diffs folded away.
 */

const MAX_FAILURES_SHOWN = 20

export function formatRatio(value: number | null): string {
  return value === null ? 'n/a' : value.toFixed(3)
}

function formatNumber(value: number | null, digits = 1): string {
  return value === null ? 'n/a' : Number.isInteger(value) ? String(value) : value.toFixed(digits)
}

/** One cell per metric: rates with three decimals, counts as integers, costs with one. */
export function metricRows(metrics: Metrics): Array<[string, string]> {
  return [
    ['pass^1', formatRatio(metrics.pass1)],
    ...metrics.passK.slice(1).map((entry): [string, string] => [`pass^${entry.k}`, formatRatio(entry.value)]),
    ['resolution rate', formatRatio(metrics.resolutionRate)],
    ['fault pass rate', formatRatio(metrics.faultPassRate)],
    ['escalation precision', formatRatio(metrics.escalationPrecision)],
    ['escalation recall', formatRatio(metrics.escalationRecall)],
    ['unsafe writes', String(metrics.unsafe)],
    ['harness/engine errors', String(metrics.errors)],
    ['invalid-step rate', formatRatio(metrics.invalidStepRate)],
    ['steps per finding', formatNumber(metrics.stepsPerFinding, 2)],
    ['prompt tokens per finding', formatNumber(metrics.promptTokensPerFinding, 0)],
    ['completion tokens per finding', formatNumber(metrics.completionTokensPerFinding, 0)],
    ['prompt-cache reuse', formatRatio(metrics.cacheReuse)],
    ['latency p50 per finding (ms)', formatNumber(metrics.latencyP50Ms, 0)],
    ['latency p95 per finding (ms)', formatNumber(metrics.latencyP95Ms, 0)],
  ]
}

export const escapeCell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ')

/** A markdown table; cells are escaped (a `|` or a line break in a value would break the row). */
export function table(headers: string[], rows: string[][]): string {
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.map(escapeCell).join(' | ')} |`),
  ].join('\n')
}

function breakdownRows(entries: Breakdown[]): string[][] {
  return entries.map((entry) => [
    `\`${entry.key}\``,
    entry.expected ?? '',
    String(entry.metrics.scenarios),
    formatRatio(entry.metrics.pass1),
    formatRatio(entry.metrics.faultPassRate),
    formatRatio(entry.metrics.escalationRecall),
    String(entry.metrics.unsafe),
    String(entry.metrics.errors),
  ])
}

export function headline(result: Pick<EvalResult, 'verdict' | 'gates' | 'metrics'>): string {
  const failed = result.gates.filter((gate) => !gate.passed).length
  if (result.verdict === 'error')
    return (
      `⚠️ the eval could not run completely (${result.metrics.errors} harness/engine ` +
      `error${result.metrics.errors === 1 ? '' : 's'}): no verdict on the model`
    )
  if (result.verdict === 'fail')
    return `❌ ${failed} of ${result.gates.length} gate${result.gates.length === 1 ? '' : 's'} failed`
  return `✅ all ${result.gates.length} gate${result.gates.length === 1 ? '' : 's'} passed`
}

export function toMarkdown(result: EvalResult): string {
  const {metrics} = result
  const lines: string[] = []
  lines.push(`## invagent eval: ${headline(result)}`, '')
  lines.push(
    `Engine **${result.engine.name}**${result.engine.model ? ` (${result.engine.model})` : ''}, ` +
      `profile ${result.engine.profile} · suite **${result.suite.name}** v${result.suite.version} ` +
      `(\`${result.suite.hash}\`, ${result.suite.scenarios} scenarios) · ${result.trials} ` +
      `trial${result.trials === 1 ? '' : 's'} each · ${(result.wallMs / 1000).toFixed(1)} s ` +
      `on ${result.jobs} job${result.jobs === 1 ? '' : 's'}`,
    '',
  )
  lines.push('### Gates', '')
  lines.push(
    table(
      ['gate', 'value', 'result'],
      result.gates.map((gate) => [
        `\`${gate.expression}\`${gate.implicit ? ' (default)' : ''}`,
        gate.value === null ? 'n/a' : formatNumber(gate.value, 3),
        gate.passed ? '✅ pass' : `❌ fail${gate.reason ? ` (${gate.reason})` : ''}`,
      ]),
    ),
    '',
  )

  lines.push('### Metrics', '')
  const baseline = result.baseline
  if (baseline) {
    const compared = new Map(baseline.metrics.map((entry) => [entry.metric, entry]))
    const names: Record<string, string> = {
      'pass^1': 'pass1',
      'resolution rate': 'resolution',
      'fault pass rate': 'fault_pass',
      'escalation precision': 'escalation_precision',
      'escalation recall': 'escalation_recall',
      'unsafe writes': 'unsafe',
      'harness/engine errors': 'errors',
      'invalid-step rate': 'invalid_step_rate',
      'steps per finding': 'steps_per_finding',
      'prompt tokens per finding': 'prompt_tokens_per_finding',
      'completion tokens per finding': 'completion_tokens_per_finding',
      'prompt-cache reuse': 'cache_reuse',
      'latency p50 per finding (ms)': 'latency_p50_ms',
      'latency p95 per finding (ms)': 'latency_p95_ms',
    }
    const rows = metricRows(metrics).map(([name, value]) => {
      const entry = compared.get(names[name] ?? name)
      if (!entry) return [name, value, '', '']
      const delta = entry.delta === null ? 'n/a' : `${entry.delta >= 0 ? '+' : ''}${formatNumber(entry.delta, 3)}`
      return [name, value, formatNumber(entry.baseline, 3), `${delta}${entry.regressed ? ' ⚠️ regression' : ''}`]
    })
    lines.push(table(['metric', 'this run', `baseline (${baseline.engine})`, 'change'], rows), '')
    if (!baseline.sameSuite)
      lines.push(
        `The baseline ran another suite (\`${baseline.suiteHash}\`): scenario-level changes are not compared.`,
        '',
      )
    if (baseline.newlyFailing.length > 0)
      lines.push(`**Newly failing scenarios:** ${baseline.newlyFailing.map((id) => `\`${id}\``).join(', ')}`, '')
    if (baseline.newlyPassing.length > 0)
      lines.push(`Newly passing scenarios: ${baseline.newlyPassing.map((id) => `\`${id}\``).join(', ')}`, '')
    if (baseline.breakdown.length > 0)
      lines.push(
        `**pass^1 dropped ` +
          `for:** ${baseline.breakdown
            .map((entry) => `\`${entry.key}\` ${formatRatio(entry.baseline)} ` + `→ ${formatRatio(entry.current)}`)
            .join(', ')}`,
        '',
      )
  } else {
    lines.push(table(['metric', 'value'], metricRows(metrics)), '')
  }

  lines.push('### By root cause', '')
  lines.push(
    table(
      ['rule/root cause', 'expected', 'scenarios', 'pass^1', 'fault pass', 'esc. recall', 'unsafe', 'errors'],
      breakdownRows(result.byRootCause),
    ),
    '',
  )
  if (result.byTag.length > 0) {
    lines.push('### By tag', '')
    lines.push(
      table(
        ['tag', '', 'scenarios', 'pass^1', 'fault pass', 'esc. recall', 'unsafe', 'errors'],
        breakdownRows(result.byTag),
      ),
      '',
    )
  }

  const failing = result.results.filter((trial) => trial.status !== 'passed')
  if (failing.length > 0) {
    lines.push(
      `### Failures (${failing.length} ` +
        `trial${failing.length === 1 ? '' : 's'}${
          failing.length > MAX_FAILURES_SHOWN ? `, first ${MAX_FAILURES_SHOWN} ` + `shown` : ''
        })`,
      '',
    )
    for (const trial of failing.slice(0, MAX_FAILURES_SHOWN)) {
      const summary =
        trial.status === 'error' ? `error (${trial.error!.kind}): ${trial.error!.message}` : trial.reasons[0]
      lines.push(
        `<details><summary><code>${trial.scenario}</code> ` +
          `#${trial.trial}: ${escapeHtml(summary.length > 200 ? `${summary.slice(0, 199)}…` : summary)}</summary>`,
        '',
        '```diff',
        fenced(trial.status === 'error' ? trial.error!.message : failureDetails(trial)),
        '```',
        '',
        '</details>',
        '',
      )
    }
  }
  return `${lines.join('\n').trimEnd()}\n`
}

/** Inventory text inside a code block must not be able to close it. */
function fenced(text: string): string {
  return text.replaceAll('```', '`\u200b``')
}

function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}
