import type {AuditReport} from '../agent/audit.js'
import type {Finding} from '../detect/finding.js'
import {renderTable} from './table.js'

function brief(args: Record<string, unknown>): string {
  return Object.entries(args)
    .filter(([key]) => key !== 'reason')
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ')
}

const OUTCOME_LABEL = {
  resolved: 'resolved ✔',
  would_resolve: 'would_resolve ✔ validated',
  parked: 'parked ⏸ approval',
  deferred: 'deferred ↻',
  escalated: 'escalate ⚑',
  failed: 'failed ✖',
}

/** The human view of an audit: one row per finding, then the summary and where the log went. */
export function renderAuditReport(report: AuditReport): string {
  const rows = report.outcomes.map((outcome) => [
    outcome.rule,
    outcome.entity,
    outcome.rootCause,
    outcome.actions.map((action) => `${action.tool}(${brief(action.args)})`).join('; ') || '—',
    OUTCOME_LABEL[outcome.outcome],
  ])
  const {summary} = report
  const mode = report.dryRun ? 'dry-run: nothing was written' : 'apply mode: validated fixes were committed'
  return [
    rows.length > 0
      ? renderTable(['rule', 'entity', 'root cause', 'planned actions', 'outcome'], rows, 70)
      : 'No findings: the inventory is consistent.',
    '',
    `${report.findingsDetected} finding(s) detected, ${report.outcomes.length} audited (${mode}, engine ${report.engine}).`,
    `resolved ${summary.resolved} · would resolve ${summary.wouldResolve} · escalated ${summary.escalated} · failed ${summary.failed}` +
      (summary.parked > 0 ? ` · parked ${summary.parked} (see \`invagent approvals list\`)` : ''),
    ...(report.deferredNote ? [report.deferredNote] : []),
    `log: ${report.logFile}`,
  ].join('\n')
}

export function renderFindings(findings: Finding[]): string {
  if (findings.length === 0) return 'No findings: the inventory is consistent.'
  const rows = findings.map((finding) => [
    finding.rule,
    finding.entity,
    finding.severity,
    Object.entries(finding.evidence)
      .map(([key, value]) => `${key}=${value}`)
      .join(' '),
  ])
  return `${renderTable(['rule', 'entity', 'severity', 'evidence'], rows, 80)}\n\n${findings.length} finding(s).`
}
