import type {EvalResult, TrialResult} from './result.js'
import {formatDifference} from './state.js'

/*
 * JUnit XML, as CI systems (GitHub Actions reporters, GitLab, Jenkins) read it: one test case
 * per scenario and trial, a <failure> with the reasons and the row-by-row state diff when the
 * agent left the wrong state, an <error> when the harness or the engine failed (not the
 * agent's fault), and a second suite with one test case per gate.
 */

/** Escapes text for XML 1.0, dropping the control characters it cannot carry at all. */
export function xmlEscape(text: string): string {
  return text
    .replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;')
}

const seconds = (ms: number) => (ms / 1000).toFixed(3)
/** JUnit's timestamp is an xs:dateTime without a zone: "2026-01-31T12:00:00" (UTC here). */
const timestamp = (iso: string) => iso.slice(0, 19)

function classname(result: TrialResult): string {
  const first = result.faults[0]
  return first ? `invagent.eval.${first.rule}.${first.rootCause}` : 'invagent.eval.clean'
}

/** The failure body: reasons, then every kept differing row, then the escalations. */
export function failureDetails(result: TrialResult): string {
  const lines = [...result.reasons]
  if (result.differences.length > 0) {
    lines.push(
      '',
      `state diff against the gold state (${result.differenceCount} row${result.differenceCount === 1 ? '' : 's'}${result.differenceCount > result.differences.length ? `, first ${result.differences.length} shown` : ''}):`,
    )
    lines.push(...result.differences.map(formatDifference))
  }
  lines.push(
    '',
    `escalations expected: ${result.escalations.expected.join(', ') || 'none'}`,
    `escalations made:     ${result.escalations.actual.join(', ') || 'none'}`,
  )
  const faults = result.faults.filter((fault) => !fault.correct)
  if (faults.length > 0)
    lines.push(
      `faults handled wrongly: ${faults.map((fault) => `${fault.id} ${fault.rule}/${fault.rootCause} (expected ${fault.expected}, outcome ${fault.outcome ?? 'not audited'})`).join('; ')}`,
    )
  return lines.join('\n')
}

function testCase(result: TrialResult): string {
  const open = `    <testcase classname="${xmlEscape(classname(result))}" name="${xmlEscape(`${result.scenario} #${result.trial}`)}" time="${seconds(result.wallMs)}"`
  if (result.status === 'passed') return `${open}/>`
  if (result.status === 'error') {
    const error = result.error!
    return `${open}>\n      <error type="${error.kind}" message="${xmlEscape(error.message)}">${xmlEscape(error.message)}</error>\n    </testcase>`
  }
  const message = result.reasons[0] ?? 'failed'
  return `${open}>\n      <failure type="StateMismatch" message="${xmlEscape(message.length > 300 ? `${message.slice(0, 299)}…` : message)}">${xmlEscape(failureDetails(result))}</failure>\n    </testcase>`
}

export function toJunitXml(result: EvalResult): string {
  const failures = result.results.filter((trial) => trial.status === 'failed').length
  const errors = result.results.filter((trial) => trial.status === 'error').length
  const gateFailures = result.gates.filter((gate) => !gate.passed).length
  const totalSeconds = seconds(result.wallMs)
  const properties = [
    ['engine', result.engine.name],
    ['model', result.engine.model ?? ''],
    ['suite', `${result.suite.name} v${result.suite.version} (${result.suite.hash})`],
    ['trials', String(result.trials)],
    ['pass1', String(result.metrics.pass1 ?? '')],
    ['unsafe', String(result.metrics.unsafe)],
  ]
  const gateCases = result.gates.map((gate) => {
    const open = `    <testcase classname="invagent.eval.gates" name="${xmlEscape(gate.expression)}" time="0"`
    if (gate.passed) return `${open}/>`
    const message = `${gate.metric} = ${gate.value ?? 'n/a'}, needs ${gate.operator} ${gate.threshold ?? 'n/a'}${gate.reason ? ` (${gate.reason})` : ''}`
    return `${open}>\n      <failure type="GateFailed" message="${xmlEscape(message)}">${xmlEscape(message)}</failure>\n    </testcase>`
  })
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="invagent eval" tests="${result.results.length + result.gates.length}" failures="${failures + gateFailures}" errors="${errors}" time="${totalSeconds}">`,
    `  <testsuite name="${xmlEscape(`invagent eval: ${result.suite.name} (${result.engine.name})`)}" tests="${result.results.length}" failures="${failures}" errors="${errors}" skipped="0" time="${totalSeconds}" timestamp="${timestamp(result.startedAt)}">`,
    '    <properties>',
    ...properties.map(([name, value]) => `      <property name="${name}" value="${xmlEscape(value)}"/>`),
    '    </properties>',
    ...result.results.map(testCase),
    '  </testsuite>',
    `  <testsuite name="invagent eval: gates" tests="${result.gates.length}" failures="${gateFailures}" errors="0" skipped="0" time="0" timestamp="${timestamp(result.startedAt)}">`,
    ...gateCases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n')
}
