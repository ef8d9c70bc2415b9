import {randomUUID} from 'node:crypto'

import type {Finding} from '../detect/finding.js'
import {currentPromptVersion, type EngineIdentity} from '../engines/create-engine.js'
import type {Engine, EngineSession, Observation, TokenUsage} from '../engines/engine.js'
import {ToolFailure, type InventoryBackend, type InventoryReads, type WriteImpact} from '../inventory/backend.js'
import {ROOT_CAUSES, type RuleName} from '../tools/catalogue.js'
import type {ReadToolName, ToolArgs, WriteToolName} from '../tools/tools.js'
import {callReadTool} from '../tools/read-tools.js'
import {applyWrite, previewWrite} from '../tools/write-tools.js'
import {canonicalJson, sha256Hex} from '../util/canonical-json.js'
import type {StateStore} from '../state/state-store.js'
import {applyPlan, type ApplyResult} from './apply.js'
import type {AuditLog} from './audit-log.js'
import {evidenceDigest, fingerprintOf, impactSize, scopeToJson, type Plan, type PlannedWrite} from './plan.js'
import {checkWrite, DEFAULT_POLICY, type PolicyOptions} from './policy.js'
import {SandboxInventory} from './sandbox.js'
import {scopeOf, type FindingScope} from './scope.js'
import {validateStep} from './step.js'

export type Outcome = 'resolved' | 'would_resolve' | 'parked' | 'deferred' | 'escalated' | 'failed'

export interface ActionRecord {
  tool: string
  args: Record<string, unknown>
  /** True only when the write reached the live inventory and was committed. */
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
  /** Whether the plan needs a person's approval (above --approve-above, or --approve all). */
  needsApproval: boolean
  planId: string | null
  approvalId: string | null
  escalationId: string | null
  /** How long the apply unit held the inventory for this finding, in milliseconds; null when no unit ran. */
  holdMs: number | null
  /** The part of holdMs before the commit (the commit's own time is the storage's). */
  holdWorkMs: number | null
}

export interface AuditSummary {
  resolved: number
  wouldResolve: number
  parked: number
  deferred: number
  escalated: number
  failed: number
}

export interface AuditReport {
  runId: string
  dryRun: boolean
  engine: string
  db: string
  state: string | null
  logFile: string
  findingsDetected: number
  outcomes: FindingOutcome[]
  summary: AuditSummary
  /** One line when findings were left for the next run (the write cap was reached). */
  deferredNote: string | null
}

/** Says yes or no to a plan that needs approval; undefined when nobody can be asked at once (the plan is parked). */
export type Approver = (plan: Plan, finding: Finding) => Promise<boolean | undefined>

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
  /** Every plan with writes needs approval, whatever it moves. */
  approveAll?: boolean
  /** Where plans are parked and escalations queued; without one, a plan nobody can approve is escalated. */
  state?: StateStore
  /** How long a parked plan waits for a decision. */
  approvalTtlMs?: number
  engineIdentity?: EngineIdentity
  /** The locator plans record, so that an approval applies them to the same inventory from any folder. */
  inventoryLocator?: string
  maxSteps?: number
  maxInvalidSteps?: number
  maxValidationFailures?: number
  onOutcome?: (outcome: FindingOutcome, index: number, total: number) => void
}

export const AUDIT_LIMITS = {maxSteps: 16, maxInvalidSteps: 3, maxValidationFailures: 2}
export const DEFAULT_APPROVAL_TTL_MS = 7 * 24 * 60 * 60 * 1000

/** The idempotency key of a write: the same problem instance and the same call give the same key. */
export function idempotencyKey(finding: Finding, tool: string, args: Record<string, unknown>): string {
  const {reason: _reason, ...material} = args
  return sha256Hex(canonicalJson({finding: finding.id, evidence: finding.evidence, tool, args: material}))
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * The audit loop (docs/architecture.md, "The audit loop"): detect, then for each finding plan in
 * a sandbox (the engine troubleshoots, every write passes the policy gate, `resolve` is accepted
 * only when the rules over the scope validate there), then apply the plan in one short unit on
 * the live inventory, park it for a person, or escalate. In dry-run nothing is applied.
 */
export async function runAudit(options: AuditOptions): Promise<AuditReport> {
  const {backend, engine, log} = options
  const runId = options.runId ?? randomUUID().slice(0, 8)
  const policy = options.policy ?? DEFAULT_POLICY
  log.append('run-started', {
    engine: engine.name,
    dryRun: options.dryRun,
    db: backend.location,
    policy,
    rules: options.rules ?? 'all',
    approveAll: options.approveAll ?? false,
  })
  const detected = await backend.detect(options.rules)
  for (const finding of detected) log.append('finding-detected', finding)
  log.flush()
  const findings = options.maxFindings === undefined ? detected : detected.slice(0, options.maxFindings)
  const outcomes: FindingOutcome[] = []
  const counters = {run: 0}
  const sandbox = new SandboxInventory(backend)
  const identity = options.engineIdentity ?? {name: engine.name, model: null, promptVersion: currentPromptVersion()}
  try {
    for (const [index, finding] of findings.entries()) {
      const outcome = await auditFinding(finding, {...options, runId, policy, sandbox, identity}, counters)
      log.append('outcome-recorded', outcome)
      log.flush()
      await options.state?.recordOutcome({
        runId,
        findingId: outcome.findingId,
        outcome: outcome.outcome,
        rootCause: outcome.rootCause,
        summary: outcome.summary,
        planId: outcome.planId,
        approvalId: outcome.approvalId,
        escalationId: outcome.escalationId,
      })
      outcomes.push(outcome)
      options.onOutcome?.(outcome, index, findings.length)
    }
  } finally {
    sandbox.close()
  }
  const count = (outcome: Outcome) => outcomes.filter((current) => current.outcome === outcome).length
  const summary: AuditSummary = {
    resolved: count('resolved'),
    wouldResolve: count('would_resolve'),
    parked: count('parked'),
    deferred: count('deferred'),
    escalated: count('escalated'),
    failed: count('failed'),
  }
  const deferredNote =
    summary.deferred > 0
      ? `${summary.deferred} finding(s) deferred: this run reached its cap of ${policy.maxWritesPerRun} writes ` +
        '(--max-writes); rerun to continue.'
      : null
  log.append('run-finished', {summary, findingsDetected: detected.length, audited: findings.length, deferredNote})
  return {
    runId,
    dryRun: options.dryRun,
    engine: engine.name,
    db: backend.location,
    state: options.state?.location ?? null,
    logFile: log.file,
    findingsDetected: detected.length,
    outcomes,
    summary,
    deferredNote,
  }
}

/** One tool call the engine made, with what came of it: an escalation shows a person what was tried. */
export interface TriedCall {
  tool: string
  args: Record<string, unknown>
  outcome: string
}

interface FindingContext extends AuditOptions {
  runId: string
  policy: PolicyOptions
  sandbox: SandboxInventory
  identity: EngineIdentity
}

function newOutcome(finding: Finding): FindingOutcome {
  return {
    findingId: finding.id,
    rule: finding.rule,
    entity: finding.entity,
    rootCause: 'unknown',
    outcome: 'failed',
    actions: [],
    summary: '',
    steps: 0,
    invalidSteps: 0,
    usage: {promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0},
    latencyMs: 0,
    needsApproval: false,
    planId: null,
    approvalId: null,
    escalationId: null,
    holdMs: null,
    holdWorkMs: null,
  }
}

/** Plan (at most twice when the first plan went stale), then apply, park or escalate. */
async function auditFinding(
  finding: Finding,
  context: FindingContext,
  runCounters: {run: number},
): Promise<FindingOutcome> {
  const started = performance.now()
  let result = newOutcome(finding)
  let plan: Plan | undefined
  const tried: TriedCall[] = []
  if (!context.dryRun && runCounters.run >= context.policy.maxWritesPerRun) {
    result.outcome = 'deferred'
    result.summary = `deferred: this run reached its cap of ${context.policy.maxWritesPerRun} writes`
    context.log.append('finding-deferred', {findingId: finding.id, cap: context.policy.maxWritesPerRun})
  } else {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const previous = result
      result = newOutcome(finding)
      result.steps = previous.steps
      result.invalidSteps = previous.invalidSteps
      result.usage = previous.usage
      try {
        plan = await makePlan(finding, context, result, runCounters, attempt, tried)
      } catch (error) {
        result.outcome = 'failed'
        result.summary = `audit of this finding failed: ${describeError(error)}`
        break
      }
      if (!plan) break
      let stale: string[] | undefined
      try {
        stale = await settle(plan, finding, context, result, runCounters, attempt)
      } catch (error) {
        result.outcome = 'failed'
        result.summary = `applying the plan failed, nothing of it was kept: ${describeError(error)}`
        break
      }
      if (!stale) break
      if (attempt === 2) {
        result.outcome = 'escalated'
        result.summary = `the plan went stale twice while it was made; last changes: ${stale.join('; ')}`
      }
    }
  }
  // A dry run leaves no work for people: it reports escalations without queueing them.
  if (result.outcome === 'escalated' && !context.dryRun) await queueEscalation(finding, context, result, plan, tried)
  result.latencyMs = Math.round(performance.now() - started)
  return result
}

/** Troubleshoots the finding in the sandbox; returns a validated plan, or undefined with the outcome set. */
async function makePlan(
  finding: Finding,
  context: FindingContext,
  result: FindingOutcome,
  runCounters: {run: number},
  attempt: number,
  tried: TriedCall[],
): Promise<Plan | undefined> {
  const {sandbox} = context
  sandbox.reset()
  const scope = await scopeOf(sandbox, finding)
  const before = await sandbox.detectInScope(scope)
  if (!before.some((current) => current.id === finding.id)) {
    result.outcome = context.dryRun ? 'would_resolve' : 'resolved'
    result.rootCause = 'resolved_by_earlier_fix'
    result.summary = 'already resolved by an earlier fix in this run'
    return undefined
  }
  const writes: PlannedWrite[] = []
  const approval = {needed: false}
  const validated = await converse(finding, scope, new Set(before.map((current) => current.id)), context, result, {
    writes,
    approval,
    runCounters,
    tried,
  })
  if (!validated) return undefined
  const {reads, seen} = sandbox.reads()
  const plan: Plan = {
    schemaVersion: 1,
    id: `plan-${context.runId}-${sha256Hex(finding.id).slice(0, 10)}-${attempt}`,
    runId: context.runId,
    findingId: finding.id,
    finding: {
      rule: finding.rule,
      entity: finding.entity,
      severity: finding.severity,
      evidence: finding.evidence as Record<string, unknown>,
    },
    inventory: context.inventoryLocator ?? context.backend.location,
    createdAt: new Date().toISOString(),
    writes,
    rootCause: result.rootCause,
    summary: result.summary,
    validation: {validated: true, problems: [], findingsBefore: before.map((current) => current.id).sort()},
    scope: scopeToJson(scope),
    reads,
    fingerprint: fingerprintOf(seen),
    seen: seen as unknown as Plan['seen'],
    evidenceDigest: evidenceDigest(finding.evidence),
    engine: context.identity,
    maxImpact: writes.reduce((largest, write) => Math.max(largest, impactSize(write.impact)), 0),
    needsApproval: writes.length > 0 && (approval.needed || (context.approveAll ?? false)),
  }
  result.planId = plan.id
  result.needsApproval = plan.needsApproval
  context.log.append('plan-made', {
    findingId: finding.id,
    planId: plan.id,
    writes: plan.writes,
    fingerprint: plan.fingerprint,
    needsApproval: plan.needsApproval,
    engine: plan.engine,
  })
  return plan
}

/**
 * What happens to a validated plan: nothing in dry-run; deferred past the write cap; asked,
 * parked or refused when it needs approval; otherwise applied. Returns the changes when the
 * plan was stale (the caller plans again once).
 */
async function settle(
  plan: Plan,
  finding: Finding,
  context: FindingContext,
  result: FindingOutcome,
  runCounters: {run: number},
  attempt: number,
): Promise<string[] | undefined> {
  const {log, state} = context
  if (context.dryRun) {
    result.outcome = 'would_resolve'
    if (plan.needsApproval) result.summary = `${result.summary} (needs approval: moves stock by ${plan.maxImpact})`
    return undefined
  }
  if (runCounters.run + plan.writes.length > context.policy.maxWritesPerRun) {
    result.outcome = 'deferred'
    const cap = context.policy.maxWritesPerRun
    result.summary = `deferred: its ${plan.writes.length} write(s) would pass this run's cap of ${cap}`
    log.append('finding-deferred', {findingId: finding.id, planId: plan.id, cap})
    return undefined
  }
  if (plan.needsApproval) {
    // The plan is on disk before a person is asked or anything is recorded in the state store.
    log.flush()
    const answer = context.approver ? await context.approver(plan, finding) : undefined
    log.append('approval-answered', {
      findingId: finding.id,
      planId: plan.id,
      maxImpact: plan.maxImpact,
      approved: answer ?? null,
    })
    if (answer === undefined) {
      if (state) {
        log.flush()
        const parked = await state.park(plan, new Date(Date.now() + (context.approvalTtlMs ?? DEFAULT_APPROVAL_TTL_MS)))
        log.append('plan-parked', {
          findingId: finding.id,
          planId: parked.planId,
          approvalId: parked.id,
          expiresAt: parked.expiresAt,
        })
        result.outcome = 'parked'
        result.approvalId = parked.id
        result.summary =
          `${plan.summary} (parked for approval ${parked.id}: moves stock by ${plan.maxImpact}; ` +
          `\`invagent approvals approve ${parked.id}\`)`
        return undefined
      }
      result.outcome = 'escalated'
      result.summary =
        `approval needed (moves stock by ${plan.maxImpact}) and nobody could be asked; ` +
        'rerun interactively or with --yes'
      return undefined
    }
    if (answer === false) {
      if (state) {
        log.flush()
        const parked = await state.park(plan, new Date())
        await state.decideApproval(parked.id, 'pending', {
          status: 'rejected',
          by: 'prompt',
          reason: 'refused at the prompt during the audit',
        })
        result.approvalId = parked.id
      }
      result.outcome = 'escalated'
      result.summary = `approval refused for ${plan.writes.map((write) => write.tool).join(', ')}`
      return undefined
    }
  }
  // What led to the writes is on disk before any of them is made.
  log.flush()
  const applied = await applyPlan(context.backend, plan)
  result.holdMs = Math.round(applied.holdMs * 1000) / 1000
  result.holdWorkMs = Math.round(applied.workMs * 1000) / 1000
  log.append('plan-applied', {
    findingId: finding.id,
    planId: plan.id,
    status: applied.status,
    writesApplied: applied.writesApplied,
    changes: applied.changes,
    problems: applied.problems,
    holdMs: result.holdMs,
    holdWorkMs: result.holdWorkMs,
    attempt,
  })
  return outcomeOfApply(applied, plan, result, runCounters)
}

function outcomeOfApply(
  applied: ApplyResult,
  plan: Plan,
  result: FindingOutcome,
  runCounters: {run: number},
): string[] | undefined {
  if (applied.status === 'applied' || applied.status === 'already_applied') {
    runCounters.run += applied.writesApplied
    result.outcome = 'resolved'
    for (const action of result.actions)
      action.applied =
        applied.status === 'applied' &&
        plan.writes.some(
          (write) => write.tool === action.tool && canonicalJson(write.args) === canonicalJson(action.args),
        )
    return undefined
  }
  if (applied.status === 'stale') return applied.changes
  result.outcome = 'escalated'
  if (applied.status === 'partial') {
    // An inventory without rollback: say exactly which writes landed
    // (docs/architecture.md, "Backends without rollback").
    runCounters.run += applied.writesApplied
    for (const action of result.actions)
      action.applied = applied.appliedWrites.some(
        (write) => write.tool === action.tool && canonicalJson(write.args) === canonicalJson(action.args),
      )
    result.summary =
      'the plan was applied only in part, and the inventory cannot roll back: ' + applied.problems.join('; ')
    return undefined
  }
  result.summary =
    'the plan validated in the sandbox but not on the live inventory, so nothing was kept: ' +
    applied.problems.join('; ')
  return undefined
}

/** Suggested next step for a person: the catalogue's description of the root cause, or a generic one. */
function nextStepFor(finding: Finding, rootCause: string): string {
  const known = ROOT_CAUSES.find((entry) => entry.rule === finding.rule && entry.rootCause === rootCause)
  if (known && known.expected === 'escalate') return `Investigate by hand: ${known.description}.`
  return (
    `Review the evidence and the engine's tries, fix ${finding.entity} by hand or rerun the audit, ` +
    'then close this escalation with a note.'
  )
}

async function queueEscalation(
  finding: Finding,
  context: FindingContext,
  result: FindingOutcome,
  plan: Plan | undefined,
  tried: TriedCall[],
): Promise<void> {
  if (!context.state) return
  context.log.flush()
  const escalation = await context.state.escalate({
    runId: context.runId,
    findingId: finding.id,
    inventory: context.inventoryLocator ?? context.backend.location,
    rule: finding.rule,
    entity: finding.entity,
    evidence: finding.evidence as Record<string, unknown>,
    evidenceDigest: evidenceDigest(finding.evidence),
    tried,
    rootCauseGuess: result.rootCause,
    summary: result.summary,
    nextStep: nextStepFor(finding, result.rootCause),
    planId: plan?.id ?? null,
  })
  result.escalationId = escalation.id
  context.log.append('escalation-queued', {findingId: finding.id, escalationId: escalation.id, seen: escalation.seen})
}

interface PlanState {
  writes: PlannedWrite[]
  approval: {needed: boolean}
  runCounters: {run: number}
  tried: TriedCall[]
}

function observationText(observation: Observation): string {
  const text = observation.ok ? JSON.stringify(observation.result) : `error: ${observation.error}`
  return text.length > 300 ? `${text.slice(0, 297)}...` : text
}

/** The engine's conversation, in the sandbox. True when `resolve` validated; otherwise the outcome is set. */
async function converse(
  finding: Finding,
  scope: FindingScope,
  before: Set<string>,
  context: FindingContext,
  result: FindingOutcome,
  state: PlanState,
): Promise<boolean> {
  const {sandbox, log, engine} = context
  const limits = {
    maxSteps: context.maxSteps ?? AUDIT_LIMITS.maxSteps,
    maxInvalidSteps: context.maxInvalidSteps ?? AUDIT_LIMITS.maxInvalidSteps,
    maxValidationFailures: context.maxValidationFailures ?? AUDIT_LIMITS.maxValidationFailures,
  }
  const session: EngineSession = engine.start(finding)
  const findingCounters = {finding: 0}
  let validationFailures = 0
  let observation: Observation | undefined
  const finish = (outcome: Outcome, rootCause: string, summary: string) => {
    result.outcome = outcome
    result.rootCause = rootCause
    result.summary = summary
    return false
  }
  while (true) {
    if (result.steps >= limits.maxSteps)
      return finish('escalated', result.rootCause, `step limit of ${limits.maxSteps} reached without a validated fix`)
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
    const step: ReturnType<typeof validateStep> = proposal.parseError
      ? {ok: false, error: proposal.parseError}
      : validateStep(proposal.step)
    if (!step.ok) {
      result.invalidSteps++
      log.append('step-invalid', {findingId: finding.id, error: step.error})
      if (result.invalidSteps > limits.maxInvalidSteps)
        return finish('escalated', 'unknown', `more than ${limits.maxInvalidSteps} invalid steps`)
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
      const after = await sandbox.detectInScope(scope)
      const problems = after
        .filter((current) => current.id === finding.id || !before.has(current.id))
        .map((current) =>
          current.id === finding.id
            ? `the finding is still present (${JSON.stringify(current.evidence)})`
            : `a new finding appeared: ${current.id} (${JSON.stringify(current.evidence)})`,
        )
      log.append('validation-ran', {findingId: finding.id, validated: problems.length === 0, problems})
      if (problems.length === 0) {
        result.outcome = context.dryRun ? 'would_resolve' : 'resolved'
        result.rootCause = rootCause
        result.summary = String(args.summary)
        return true
      }
      validationFailures++
      if (validationFailures > limits.maxValidationFailures)
        return finish('escalated', rootCause, `fix did not validate: ${problems.join('; ')}`)
      observation = {ok: true, result: {validated: false, problems}}
      continue
    }
    observation =
      tool.effect === 'read'
        ? await runRead(tool.name as ReadToolName, args, sandbox)
        : await runWrite(finding, scope, tool.name as WriteToolName, args, context, result, findingCounters, state)
    state.tried.push({tool: tool.name, args, outcome: observationText(observation)})
    log.append('tool-called', {findingId: finding.id, tool: tool.name, args, observation})
  }
}

async function runRead(tool: ReadToolName, args: Record<string, unknown>, store: InventoryReads): Promise<Observation> {
  try {
    return {ok: true, result: await callReadTool(store, tool, args)}
  } catch (error) {
    if (error instanceof ToolFailure) return {ok: false, error: error.message}
    throw error
  }
}

/** A write in the plan: previewed, gated by policy, applied to the sandbox, and recorded for apply. */
async function runWrite(
  finding: Finding,
  scope: FindingScope,
  tool: WriteToolName,
  args: Record<string, unknown>,
  context: FindingContext,
  result: FindingOutcome,
  findingCounters: {finding: number},
  state: PlanState,
): Promise<Observation> {
  const {sandbox, log, policy} = context
  let impact: WriteImpact
  try {
    impact = await previewWrite(sandbox, tool, args as ToolArgs<WriteToolName>)
  } catch (error) {
    if (error instanceof ToolFailure) return {ok: false, error: error.message}
    throw error
  }
  const decision = checkWrite(policy, scope, tool, args, impact, {
    finding: findingCounters.finding,
    run: state.runCounters.run,
  })
  log.append('policy-decided', {findingId: finding.id, tool, args, impact, decision})
  if (!decision.allowed) return {ok: false, error: `policy denied ${tool}: ${decision.reason}`}
  const key = idempotencyKey(finding, tool, args)
  try {
    const written = await applyWrite(sandbox, tool, args as ToolArgs<WriteToolName>, {
      runId: context.runId,
      findingId: finding.id,
      idempotencyKey: key,
    })
    findingCounters.finding++
    result.actions.push({tool, args, applied: false})
    if (written.applied) {
      state.writes.push({tool, args, impact, idempotencyKey: key})
      if (decision.needsApproval) state.approval.needed = true
    }
    return {ok: true, result: written}
  } catch (error) {
    if (error instanceof ToolFailure) return {ok: false, error: error.message}
    throw error
  }
}
