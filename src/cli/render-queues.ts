import type {Plan} from '../agent/plan.js'
import type {Approval, Escalation} from '../state/state-store.js'
import {renderTable} from './table.js'

/** The human view of the approvals queue. */
export function renderApprovals(approvals: Approval[]): string {
  if (approvals.length === 0) return 'No approvals.'
  const rows = approvals.map((approval) => [
    approval.id,
    approval.status,
    approval.findingId,
    String(approval.maxImpact),
    String(approval.writes),
    approval.expiresAt.slice(0, 16),
    approval.summary,
  ])
  return renderTable(['id', 'status', 'finding', 'moves', 'writes', 'expires', 'summary'], rows, 60)
}

function engineText(engine: Plan['engine']): string {
  if (!engine.model) return engine.name
  const sha = engine.model.sha256 ? `, sha256 ${engine.model.sha256.slice(0, 12)}` : ''
  return `${engine.name} (${engine.model.name ?? engine.model.path}${sha})`
}

export function renderApproval(approval: Approval, plan: Plan): string {
  return [
    `${approval.id} (${approval.status}) for ${approval.findingId}, run ${approval.runId}`,
    `root cause: ${plan.rootCause}; ${plan.summary}`,
    `requested ${approval.requestedAt}, expires ${approval.expiresAt}`,
    ...(approval.decidedBy
      ? [`decided by ${approval.decidedBy} at ${approval.decidedAt}${approval.reason ? `: ${approval.reason}` : ''}`]
      : []),
    'writes:',
    ...plan.writes.map(
      (write, index) =>
        `  ${index + 1}. ${write.tool} ${JSON.stringify(write.args)} ` +
        `(on_hand ${write.impact.onHandDelta}, reserved ${write.impact.reservedDelta})`,
    ),
    `validated in the sandbox: ${plan.validation.validated ? 'yes' : 'no'}; ` +
      `fingerprint ${plan.fingerprint.slice(0, 16)}`,
    `engine ${engineText(plan.engine)}, prompt ${plan.engine.promptVersion}`,
    ...(approval.changes.length > 0 ? ['changes:', ...approval.changes.map((change) => `  ${change}`)] : []),
  ].join('\n')
}

export function renderEscalations(escalations: Escalation[]): string {
  if (escalations.length === 0) return 'No escalations.'
  const rows = escalations.map((escalation) => [
    escalation.id,
    escalation.status,
    escalation.findingId,
    escalation.rootCauseGuess,
    String(escalation.seen),
    escalation.summary,
  ])
  return renderTable(['id', 'status', 'finding', 'root cause guess', 'seen', 'summary'], rows, 60)
}

export function renderEscalation(escalation: Escalation): string {
  return [
    `${escalation.id} (${escalation.status}) for ${escalation.findingId}, escalated ${escalation.seen} ` +
      `time(s), last by run ${escalation.runId}`,
    `evidence: ${JSON.stringify(escalation.evidence)}`,
    `root-cause guess: ${escalation.rootCauseGuess}`,
    `summary: ${escalation.summary}`,
    `next step: ${escalation.nextStep}`,
    'what the engine tried:',
    ...(escalation.tried.length > 0
      ? escalation.tried.map(
          (call, index) => `  ${index + 1}. ${call.tool} ${JSON.stringify(call.args)} → ${call.outcome}`,
        )
      : ['  (no tool calls)']),
    ...(escalation.closedAt ? [`closed by ${escalation.closedBy} at ${escalation.closedAt}: ${escalation.note}`] : []),
  ].join('\n')
}
