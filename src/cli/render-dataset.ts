import type {DatasetValidationReport} from '../dataset/validate.js'
import {renderTable} from './table.js'

function rows(table: Record<string, number>): string[][] {
  return Object.entries(table)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([key, value]) => [key, String(value)])
}

/** The human summary of a validation: coverage tables, then the counts by problem kind. */
export function renderValidationSummary(report: DatasetValidationReport): string {
  const {summary} = report
  const parts: string[] = []
  for (const file of report.files)
    parts.push(`${file.file}: ${file.lines} lines, ${file.examples} examples, ${file.problems} problems`)
  if (summary.examples > 0) {
    for (const [title, table] of [
      ['rule', summary.byRule],
      ['root cause', summary.byRootCause],
      ['tool', summary.byTool],
      ['outcome', summary.byOutcome],
    ] as const) {
      if (Object.keys(table).length > 0) parts.push('', renderTable([title, 'examples'], rows(table)))
    }
    // Questions have no trajectory: only examples with steps make the steps table.
    const steps = Object.entries(summary.steps)
      .filter(([key]) => key !== '0')
      .sort((a, b) => Number(a[0]) - Number(b[0]))
    const widest = Math.max(...steps.map(([, value]) => value))
    if (steps.length > 0)
      parts.push(
        '',
        renderTable(
          ['steps', 'examples', ''],
          steps.map(([key, value]) => [key, String(value), '█'.repeat(Math.max(1, Math.round((30 * value) / widest)))]),
        ),
      )
  }
  if (Object.keys(report.problemCounts).length > 0)
    parts.push('', renderTable(['problem', 'count'], rows(report.problemCounts as Record<string, number>)))
  const duplicates = report.problemCounts['duplicate-content'] ?? 0
  if (duplicates > 0)
    parts.push(
      `${duplicates} of ${report.examples} examples (${((100 * duplicates) / report.examples).toFixed(1)}%) repeat an earlier one exactly.`,
    )
  if (report.tokens)
    parts.push(
      '',
      `tokens (${report.tokens.model}): longest example ${report.tokens.longest}${report.tokens.maxTokens ? `, ${report.tokens.over} over ${report.tokens.maxTokens}` : ''}`,
    )
  if (report.fix) {
    parts.push(
      '',
      `--fix: wrote ${report.fix.written} examples to ${report.fix.out} (${report.fix.converted} converted, ${report.fix.repaired.length} repaired, ${report.fix.dropped.length} lines dropped)`,
    )
    for (const dropped of report.fix.dropped.slice(0, 50))
      parts.push(`  dropped ${dropped.file}:${dropped.line}: ${dropped.reason}`)
    if (report.fix.dropped.length > 50)
      parts.push(`  … and ${report.fix.dropped.length - 50} more (all of them under --json)`)
  }
  parts.push(
    '',
    report.ok
      ? `clean: ${report.examples} examples, no problems.`
      : `${Object.values(report.problemCounts).reduce((sum, value) => sum + value, 0)} problem(s) in ${report.examples - report.cleanExamples} of ${report.examples} examples.`,
  )
  return parts.join('\n')
}
