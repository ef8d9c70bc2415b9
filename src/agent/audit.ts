import {randomUUID} from 'node:crypto'

import type {Finding} from '../detect/finding.js'
import type {Engine, EngineSession, Observation, TokenUsage} from '../engines/engine.js'
import {ToolFailure, type FindingScope, type InventoryBackend, type WriteImpact} from '../inventory/backend.js'
import type {RuleName} from '../tools/catalogue.js'
import type {ToolArgs, WriteToolName} from '../tools/tools.js'
import {canonicalJson, sha256Hex} from '../util/canonical-json.js'
import type {AuditLog} from './audit-log.js'
import {checkWrite, DEFAULT_POLICY, type PolicyOptions} from './policy.js'
import {validateStep} from './step.js'

export type Outcome = 'resolved' | 'would_resolve' | 'escalated' | 'failed'

export interface ActionRecord {
  tool: string
  args: Record<string, unknown>
  applied: boolean
}

export interface FindingOutcome {
  findingId: string
  rule: RuleName
  entity: string
  rootCause: string
  outcome: Outcome
  actions: ActionRecord[]
  summary: string
  steps: number
  invalidSteps: number
  usage: TokenUsage
  latencyMs: number
}

export interface AuditSummary {
  resolved: number
  wouldResolve: number
  escalated: number
  failed: number
}

export interface AuditReport {
  runId: string
  dryRun: boolean
  engine: string
  db: string
  logFile: string
  findingsDetected: number
  outcomes: FindingOutcome[]
  summary: AuditSummary
}

export interface ApprovalRequest {
  finding: Finding
  tool: WriteToolName
  args: Record<string, unknown>
  impact: WriteImpact
}

/** Says yes or no to a write above the approval bound; undefined when nobody can be asked. */
export type Approver = (request: ApprovalRequest) => Promise<boolean | undefined>

export interface AuditOptions {
  backend: InventoryBackend
  engine: Engine
  log: AuditLog
  dryRun: boolean
  runId?: string
  rules?: readonly RuleName[]
  maxFindings?: number
  policy?: PolicyOptions
  approver?: Approver
  maxSteps?: number
  maxInvalidSteps?: number
  maxValidationFailures?: number
  onOutcome?: (outcome: FindingOutcome, index: number, total: number) => void
}

export const AUDIT_LIMITS = {maxSteps: 16, maxInvalidSteps: 3, maxValidationFailures: 2}

/** The idempotency key of a write: the same problem instance and the same call give the same key. */
export function idempotencyKey(finding: Finding, tool: string, args: Record<string, unknown>): string {
  const {reason: _reason, ...material} = args
  return sha256Hex(canonicalJson({finding: finding.id, evidence: finding.evidence, tool, args: material}))
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * The audit loop (DESIGN.md §5): detect, then for each finding let the engine troubleshoot with
 * read tools, pass every write through the policy gate, validate on `resolve`, and escalate what
 * cannot be fixed. Each finding runs as one unit of work: committed only when validated in apply
 * mode, rolled back in dry-run, on escalation and on failure, so nothing is ever half-applied.
 */
export async function runAudit(options: AuditOptions): Promise<AuditReport> {
  const {backend, engine, log} = options
  const runId = options.runId ?? randomUUID().slice(0, 8)
  const policy = options.policy ?? DEFAULT_POLICY
  log.append('run-started', {engine: engine.name, dryRun: options.dryRun, db: backend.location, policy, rules: options.rules ?? 'all'})
  const detected = await backend.detect(options.rules)
  for (const finding of detected) log.append('finding-detected', finding)
  const findings = options.maxFindings === undefined ? detected : detected.slice(0, options.maxFindings)
  const outcomes: FindingOutcome[] = []
  const counters = {run: 0}
  for (const [index, finding] of findings.entries()) {
    const outcome = await auditFinding(finding, {...options, runId, policy}, counters)
    log.append('outcome-recorded', outcome)
    outcomes.push(outcome)
    options.onOutcome?.(outcome, index, findings.length)
  }
  const summary: AuditSummary = {
    resolved: outcomes.filter((outcome) => outcome.outcome === 'resolved').length,
    wouldResolve: outcomes.filter((outcome) => outcome.outcome === 'would_resolve').length,
    escalated: outcomes.filter((outcome) => outcome.outcome === 'escalated').length,
    failed: outcomes.filter((outcome) => outcome.outcome === 'failed').length,
  }
  log.append('run-finished', {summary, findingsDetected: detected.length, audited: findings.length})
  return {runId, dryRun: options.dryRun, engine: engine.name, db: backend.location, logFile: log.file, findingsDetected: detected.length, outcomes, summary}
}

interface FindingContext extends AuditOptions {
  runId: string
  policy: PolicyOptions
}

async function auditFinding(finding: Finding, context: FindingContext, runCounters: {run: number}): Promise<FindingOutcome> {
  const {backend} = context
  const started = performance.now()
  const result: FindingOutcome = {findingId: finding.id, rule: finding.rule, entity: finding.entity, rootCause: 'unknown', outcome: 'failed', actions: [], summary: '', steps: 0, invalidSteps: 0, usage: {promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0}, latencyMs: 0}
  let committed = false
  try {
    await backend.unitOfWork(
      async () => {
        const scope = await backend.scopeOf(finding)
        const before = await backend.detectInScope(scope)
        if (!before.some((current) => current.id === finding.id)) {
          result.outcome = context.dryRun ? 'would_resolve' : 'resolved'
          result.rootCause = 'resolved_by_earlier_fix'
          result.summary = 'already resolved by an earlier fix in this run'
          return
        }
        await converse(finding, scope, new Set(before.map((current) => current.id)), context, result, runCounters)
      },
      () => {
        committed = !context.dryRun && result.outcome === 'resolved'
        return committed
      },
    )
  } catch (error) {
    result.outcome = 'failed'
    result.summary = `audit of this finding failed: ${describeError(error)}`
  }
  if (!committed) runCounters.run -= result.actions.filter((action) => action.applied).length
  for (const action of result.actions) action.applied = committed && action.applied
  result.latencyMs = Math.round(performance.now() - started)
  return result
}

async function converse(finding: Finding, scope: FindingScope, before: Set<string>, context: FindingContext, result: FindingOutcome, runCounters: {run: number}): Promise<void> {
  const {backend, log, engine} = context
  const limits = {maxSteps: context.maxSteps ?? AUDIT_LIMITS.maxSteps, maxInvalidSteps: context.maxInvalidSteps ?? AUDIT_LIMITS.maxInvalidSteps, maxValidationFailures: context.maxValidationFailures ?? AUDIT_LIMITS.maxValidationFailures}
  const session: EngineSession = engine.start(finding)
  const findingCounters = {finding: 0}
  let validationFailures = 0
  let observation: Observation | undefined
  const finish = (outcome: Outcome, rootCause: string, summary: string) => {
    result.outcome = outcome
    result.rootCause = rootCause
    result.summary = summary
  }
  while (true) {
    if (result.steps >= limits.maxSteps) return finish('escalated', result.rootCause, `step limit of ${limits.maxSteps} reached without a validated fix`)
    let proposal
    try {
      proposal = await session.next(observation)
    } catch (error) {
      return finish('failed', 'unknown', `engine unavailable: ${describeError(error)}`)
    }
    result.steps++
    if (proposal.usage) {
      result.usage.promptTokens += proposal.usage.promptTokens
      result.usage.completionTokens += proposal.usage.completionTokens
      result.usage.cachedPromptTokens += proposal.usage.cachedPromptTokens
    }
    log.append('step-proposed', {findingId: finding.id, step: proposal.step, raw: proposal.raw, usage: proposal.usage})
    const step: ReturnType<typeof validateStep> = proposal.parseError ? {ok: false, error: proposal.parseError} : validateStep(proposal.step)
    if (!step.ok) {
      result.invalidSteps++
      log.append('step-invalid', {findingId: finding.id, error: step.error})
      if (result.invalidSteps > limits.maxInvalidSteps) return finish('escalated', 'unknown', `more than ${limits.maxInvalidSteps} invalid steps`)
      observation = {ok: false, error: step.error}
      continue
    }
    const {tool, args} = step
    if (tool.effect === 'terminal') {
      const rootCause = String(args.root_cause)
      if (tool.name === 'escalate') {
        log.append('tool-called', {findingId: finding.id, tool: tool.name, args})
        return finish('escalated', rootCause, String(args.summary))
      }
      const after = await backend.detectInScope(scope)
      const problems = after.filter((current) => current.id === finding.id || !before.has(current.id)).map((current) => (current.id === finding.id ? `the finding is still present (${JSON.stringify(current.evidence)})` : `a new finding appeared: ${current.id} (${JSON.stringify(current.evidence)})`))
      log.append('validation-ran', {findingId: finding.id, validated: problems.length === 0, problems})
      if (problems.length === 0) return finish(context.dryRun ? 'would_resolve' : 'resolved', rootCause, String(args.summary))
      validationFailures++
      if (validationFailures > limits.maxValidationFailures) return finish('escalated', rootCause, `fix did not validate: ${problems.join('; ')}`)
      observation = {ok: true, result: {validated: false, problems}}
      continue
    }
    const written: {observation: Observation; approvalMissing?: boolean} = tool.effect === 'read' ? {observation: await runRead(tool.name, args, backend)} : await runWrite(finding, scope, tool.name as WriteToolName, args, context, result, findingCounters, runCounters)
    observation = written.observation
    log.append('tool-called', {findingId: finding.id, tool: tool.name, args, observation})
    // Without an approval the write cannot happen, whatever the engine tries next: a human decides.
    if (written.approvalMissing && !observation.ok) return finish('escalated', result.rootCause, observation.error)
  }
}

async function runRead(tool: string, args: Record<string, unknown>, backend: InventoryBackend): Promise<Observation> {
  try {
    switch (tool) {
      case 'get_part':
        return {ok: true, result: await backend.getPart(args.part_id as string)}
      case 'find_part_by_sku':
        return {ok: true, result: await backend.findPartsBySku(args.sku as string)}
      case 'list_transactions': {
        const a = args as ToolArgs<'list_transactions'>
        return {ok: true, result: await backend.listTransactions({partId: a.part_id, externalRef: a.external_ref, status: a.status, kind: a.kind, limit: a.limit})}
      }
      case 'get_transaction':
        return {ok: true, result: await backend.getTransaction(args.txn_id as string)}
      case 'get_ledger_balance':
        return {ok: true, result: await backend.getLedgerBalance(args.part_id as string)}
      case 'get_integration_events':
        return {ok: true, result: {events: await backend.getIntegrationEvents(args.txn_id as string)}}
      case 'list_reservations':
        return {ok: true, result: {reservations: await backend.listReservations(args.part_id as string, args.status as ToolArgs<'list_reservations'>['status'])}}
    }
    return {ok: false, error: `no reader for ${tool}`}
  } catch (error) {
    if (error instanceof ToolFailure) return {ok: false, error: error.message}
    throw error
  }
}

async function runWrite(finding: Finding, scope: FindingScope, tool: WriteToolName, args: Record<string, unknown>, context: FindingContext, result: FindingOutcome, findingCounters: {finding: number}, runCounters: {run: number}): Promise<{observation: Observation; approvalMissing?: boolean}> {
  const {backend, log, policy} = context
  let impact: WriteImpact
  try {
    impact = await backend.previewWrite(tool, args as ToolArgs<WriteToolName>)
  } catch (error) {
    if (error instanceof ToolFailure) return {observation: {ok: false, error: error.message}}
    throw error
  }
  const decision = checkWrite(policy, scope, tool, args, impact, {finding: findingCounters.finding, run: runCounters.run})
  log.append('policy-decided', {findingId: finding.id, tool, args, impact, decision})
  if (!decision.allowed) return {observation: {ok: false, error: `policy denied ${tool}: ${decision.reason}`}}
  if (decision.needsApproval) {
    const answer = context.approver ? await context.approver({finding, tool, args, impact}) : undefined
    log.append('approval-answered', {findingId: finding.id, tool, args, impact, approved: answer ?? null})
    if (answer !== true) return {approvalMissing: true, observation: {ok: false, error: answer === false ? `approval refused for ${tool}` : `approval needed for ${tool} (moves stock by ${Math.max(Math.abs(impact.onHandDelta), Math.abs(impact.reservedDelta))}) and nobody could be asked; rerun interactively or with --yes`}}
  }
  try {
    const written = await backend.applyWrite(tool, args as ToolArgs<WriteToolName>, {runId: context.runId, findingId: finding.id, idempotencyKey: idempotencyKey(finding, tool, args)})
    findingCounters.finding++
    if (written.applied) runCounters.run++
    result.actions.push({tool, args, applied: written.applied})
    return {observation: {ok: true, result: written}}
  } catch (error) {
    if (error instanceof ToolFailure) return {observation: {ok: false, error: error.message}}
    throw error
  }
}
