import {randomUUID} from 'node:crypto'

import {UserError} from '../errors.js'
import {openInventory} from '../inventory/open-inventory.js'
import type {Approval, Escalation, StateStore} from '../state/state-store.js'
import {applyPlan} from './apply.js'
import {AuditLog} from './audit-log.js'
import {planDigest, type Plan} from './plan.js'

/*
 * The decisions a person makes on parked plans and queued escalations (docs/architecture.md,
 * "Approvals"). Approving re-checks the plan against the live inventory (fingerprint and impact)
 * and applies it exactly once: the approval moves pending → approving → applied with
 * compare-and-set steps, and the writes carry their idempotency keys, so a second approve, or a
 * rerun after a crash, never applies twice. Every decision goes into the hash-chained log with
 * who made it, the reason and the plan's digest.
 */

export interface DecisionOptions {
  state: StateStore
  by: string
  reason?: string
  /** Where the decision's log goes. */
  logDirectoryFor: (inventory: string) => string
  /** Apply to this inventory instead of the one the plan was made against. */
  inventory?: string
}

export interface ApproveResult {
  approval: Approval
  /** applied: the plan was applied now or by an interrupted approve; stale/expired/failed: nothing applied. */
  status: 'applied' | 'stale' | 'expired' | 'failed' | 'rejected'
  /** True only when this call changed the inventory. */
  appliedNow: boolean
  changes: string[]
  problems: string[]
  logFile: string | null
}

async function load(state: StateStore, id: string): Promise<{approval: Approval; plan: Plan}> {
  const approval = await state.getApproval(id)
  if (!approval) {
    throw new UserError(`no approval "${id}" in ${state.location}`, {
      code: 'APPROVAL_NOT_FOUND',
      suggestions: ['List them with `invagent approvals list`.'],
    })
  }
  const plan = await state.getPlan(approval.planId)
  if (!plan)
    throw new UserError(`approval ${id} names plan ${approval.planId}, which ${state.location} does not hold`, {
      code: 'PLAN_NOT_FOUND',
    })
  return {approval, plan}
}

export async function showApproval(state: StateStore, id: string): Promise<{approval: Approval; plan: Plan}> {
  return load(state, id)
}

function decisionLog(options: DecisionOptions, plan: Plan): AuditLog {
  return AuditLog.create(options.logDirectoryFor(options.inventory ?? plan.inventory), randomUUID().slice(0, 8))
}

/** Approves a parked plan: re-checks it, applies it once, and records the decision. */
export async function approvePlan(id: string, options: DecisionOptions): Promise<ApproveResult> {
  const {state} = options
  const loaded = await load(state, id)
  const plan = loaded.plan
  let approval = loaded.approval
  const target = options.inventory ?? plan.inventory
  if (target.includes('***') && (approval.status === 'pending' || approval.status === 'approving')) {
    // Plans record a locator with its credentials redacted: the person approving supplies them.
    throw new UserError(`approval ${id} applies to ${target}, whose credentials are not stored with the plan`, {
      code: 'LOCATOR_CREDENTIALS',
      suggestions: ['Name the inventory with its credentials: --inventory URL or INVAGENT_INVENTORY.'],
    })
  }
  const settled = (status: ApproveResult['status']): ApproveResult => ({
    approval,
    status,
    appliedNow: false,
    changes: approval.changes,
    problems: [],
    logFile: null,
  })
  if (
    approval.status === 'applied' ||
    approval.status === 'stale' ||
    approval.status === 'expired' ||
    approval.status === 'failed' ||
    approval.status === 'rejected'
  ) {
    return settled(approval.status)
  }
  const log = decisionLog(options, plan)
  try {
    log.append('run-started', {
      command: 'approvals approve',
      approvalId: id,
      planId: plan.id,
      runId: plan.runId,
      inventory: options.inventory ?? plan.inventory,
    })
    const finish = (result: ApproveResult) => {
      log.append('run-finished', {approvalId: id, status: result.status, appliedNow: result.appliedNow})
      return {...result, logFile: log.file}
    }
    if (approval.status === 'pending') {
      if (Date.parse(approval.expiresAt) < Date.now()) {
        log.flush()
        approval = (await state.decideApproval(id, 'pending', {status: 'expired'})) ?? approval
        log.append('approval-decided', {
          approvalId: id,
          planId: plan.id,
          planDigest: planDigest(plan),
          decision: 'expired',
          by: options.by,
          expiresAt: approval.expiresAt,
        })
        return finish(settled('expired'))
      }
      log.flush()
      const taken = await state.decideApproval(id, 'pending', {
        status: 'approving',
        by: options.by,
        reason: options.reason ?? null,
      })
      if (!taken) return finish(settled((await load(state, id)).approval.status as ApproveResult['status']))
      approval = taken
      log.append('approval-decided', {
        approvalId: id,
        planId: plan.id,
        planDigest: planDigest(plan),
        decision: 'approved',
        by: options.by,
        reason: options.reason ?? null,
      })
    }
    // 'approving': this call took it, or an earlier approve stopped before recording how it ended.
    const backend = await openInventory(target)
    let applied
    try {
      await backend.assertWritable()
      log.flush()
      applied = await applyPlan(backend, plan)
    } finally {
      await backend.close()
    }
    log.append('plan-applied', {
      approvalId: id,
      planId: plan.id,
      status: applied.status,
      writesApplied: applied.writesApplied,
      changes: applied.changes,
      problems: applied.problems,
      holdMs: applied.holdMs,
    })
    if (applied.status === 'applied' || applied.status === 'already_applied') {
      log.flush()
      approval = (await state.decideApproval(id, 'approving', {status: 'applied'})) ?? approval
      return finish({
        approval,
        status: 'applied',
        appliedNow: applied.status === 'applied',
        changes: [],
        problems: [],
        logFile: null,
      })
    }
    if (applied.status === 'stale') {
      log.flush()
      approval = (await state.decideApproval(id, 'approving', {status: 'stale', changes: applied.changes})) ?? approval
      return finish({
        approval,
        status: 'stale',
        appliedNow: false,
        changes: applied.changes,
        problems: [],
        logFile: null,
      })
    }
    log.flush()
    approval = (await state.decideApproval(id, 'approving', {status: 'failed', changes: applied.problems})) ?? approval
    return finish({
      approval,
      status: 'failed',
      appliedNow: false,
      changes: [],
      problems: applied.problems,
      logFile: null,
    })
  } finally {
    log.close()
  }
}

/** Rejects a parked plan; the reason stays queryable beside the plan (a negative example for the dataset). */
export async function rejectPlan(
  id: string,
  options: DecisionOptions & {reason: string},
): Promise<{approval: Approval; logFile: string}> {
  const {state} = options
  const {approval, plan} = await load(state, id)
  if (approval.status !== 'pending') {
    throw new UserError(`approval ${id} is ${approval.status}, not pending: it cannot be rejected now`, {
      code: 'APPROVAL_DECIDED',
    })
  }
  const log = decisionLog(options, plan)
  try {
    log.append('run-started', {command: 'approvals reject', approvalId: id, planId: plan.id, runId: plan.runId})
    log.flush()
    const rejected = await state.decideApproval(id, 'pending', {
      status: 'rejected',
      by: options.by,
      reason: options.reason,
    })
    if (!rejected)
      throw new UserError(`approval ${id} was decided by someone else meanwhile`, {code: 'APPROVAL_DECIDED'})
    log.append('approval-decided', {
      approvalId: id,
      planId: plan.id,
      planDigest: planDigest(plan),
      decision: 'rejected',
      by: options.by,
      reason: options.reason,
    })
    log.append('run-finished', {approvalId: id, status: 'rejected'})
    return {approval: rejected, logFile: log.file}
  } finally {
    log.close()
  }
}

export async function closeEscalation(
  id: string,
  options: {state: StateStore; by: string; note: string; logDirectoryFor: (inventory: string) => string},
): Promise<{escalation: Escalation; logFile: string}> {
  const current = await options.state.getEscalation(id)
  if (!current)
    throw new UserError(`no escalation "${id}" in ${options.state.location}`, {
      code: 'ESCALATION_NOT_FOUND',
      suggestions: ['List them with `invagent escalations list`.'],
    })
  if (current.status !== 'open') throw new UserError(`escalation ${id} is already closed`, {code: 'ESCALATION_CLOSED'})
  const log = AuditLog.create(options.logDirectoryFor(current.inventory), randomUUID().slice(0, 8))
  try {
    log.append('run-started', {command: 'escalations close', escalationId: id, findingId: current.findingId})
    log.flush()
    const closed = await options.state.closeEscalation(id, options.note, options.by)
    if (!closed)
      throw new UserError(`escalation ${id} was closed by someone else meanwhile`, {code: 'ESCALATION_CLOSED'})
    log.append('escalation-closed', {
      escalationId: id,
      findingId: current.findingId,
      by: options.by,
      note: options.note,
    })
    log.append('run-finished', {escalationId: id, status: 'closed'})
    return {escalation: closed, logFile: log.file}
  } finally {
    log.close()
  }
}
