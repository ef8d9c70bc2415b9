import {ToolFailure, type InventoryBackend} from '../inventory/backend.js'
import type {ToolArgs, WriteResult, WriteToolName} from '../tools/tools.js'
import {applyWrite, previewWrite} from '../tools/write-tools.js'
import {crashPoint} from '../util/crash-point.js'
import {describeChanges, fingerprintOf, impactSize, readAgain, scopeFromJson, type Plan} from './plan.js'

/*
 * Apply: one short unit on the live inventory (docs/architecture.md, "Apply"). Re-read what the
 * plan read; refuse it when anything changed (stale); apply its writes under their idempotency
 * keys; run the finding's rule and every rule over its scope again on the live data; commit, or
 * roll back. On SQLite the unit is one BEGIN IMMEDIATE … COMMIT lasting milliseconds.
 */

/**
 * applied / already_applied: done. stale: the rows changed, nothing applied. invalid / failed:
 * rolled back, nothing kept. partial: only on an inventory that cannot roll back: some writes
 * landed (appliedWrites says which) and the plan did not complete or did not validate.
 */
export type ApplyStatus = 'applied' | 'already_applied' | 'stale' | 'invalid' | 'failed' | 'partial'

/** One write of a plan that reached the inventory. */
export interface AppliedPlanWrite {
  tool: string
  args: Record<string, unknown>
  idempotencyKey: string
  /** True when an earlier apply had already recorded it under its key. */
  earlier: boolean
}

export interface ApplyResult {
  status: ApplyStatus
  /** Writes that changed the inventory in this unit (0 unless applied). */
  writesApplied: number
  /** For a stale plan, what changed since it was made. */
  changes: string[]
  /** For an invalid plan, what live validation found; for a failed one, why. */
  problems: string[]
  /** How long the write unit held the inventory, in milliseconds, its commit included. */
  holdMs: number
  /** The part of holdMs before the commit: invagent's own work inside the unit. */
  workMs: number
  /** On an inventory without rollback: the writes that landed, in order (kept whatever the status). */
  appliedWrites: AppliedPlanWrite[]
}

export interface ApplyOptions {
  /** Refuse a write moving stock by more than this (the approval bound re-checked at approve time). */
  maxImpact?: number
}

/** What an apply reports before anything happened: failed, nothing applied. */
function emptyResult(): ApplyResult {
  return {status: 'failed', writesApplied: 0, changes: [], problems: [], holdMs: 0, workMs: 0, appliedWrites: []}
}

/** Applies a plan exactly once: a plan whose every write is already recorded is reported, not applied again. */
export async function applyPlan(store: InventoryBackend, plan: Plan, options: ApplyOptions = {}): Promise<ApplyResult> {
  if (store.canRollBack === false) return applyWithoutRollback(store, plan, options)
  const result = emptyResult()
  const started = performance.now()
  try {
    await store.unitOfWork(
      async () => {
        if (plan.writes.length > 0) {
          const recorded = await Promise.all(plan.writes.map((write) => store.findAction(write.idempotencyKey)))
          if (recorded.every((action) => action !== undefined)) {
            result.status = 'already_applied'
            return
          }
        }
        const now = await readAgain(store, plan.reads)
        if (fingerprintOf(now) !== plan.fingerprint) {
          result.status = 'stale'
          result.changes = describeChanges(plan, now)
          if (result.changes.length === 0) result.changes = ['the rows the plan read changed']
          return
        }
        for (const write of plan.writes) {
          const args = write.args as ToolArgs<WriteToolName>
          const impact = await previewWrite(store, write.tool as WriteToolName, args)
          if (impactSize(impact) !== impactSize(write.impact) || impact.partId !== write.impact.partId) {
            result.status = 'stale'
            result.changes = [
              `${write.tool} would now move stock by ${impactSize(impact)}, not ${impactSize(write.impact)}`,
            ]
            return
          }
          if (options.maxImpact !== undefined && impactSize(impact) > options.maxImpact) {
            result.status = 'failed'
            result.problems = [
              `${write.tool} would move stock by ${impactSize(impact)}, above the bound of ${options.maxImpact}`,
            ]
            return
          }
          const written = await applyWrite(store, write.tool as WriteToolName, args, {
            runId: plan.runId,
            findingId: plan.findingId,
            idempotencyKey: write.idempotencyKey,
          })
          if (!written.applied) {
            result.status = 'invalid'
            result.problems = [`${write.tool} changed nothing on the live inventory: ${written.message}`]
            return
          }
          result.writesApplied++
          crashPoint('apply-write')
        }
        const before = new Set(plan.validation.findingsBefore)
        const after = await store.detectInScope(scopeFromJson(plan.scope))
        result.problems = after
          .filter((current) => current.id === plan.findingId || !before.has(current.id))
          .map((current) =>
            current.id === plan.findingId
              ? `the finding is still present on the live data (${JSON.stringify(current.evidence)})`
              : `a new finding appeared on the live data: ${current.id}`,
          )
        result.status = result.problems.length === 0 ? 'applied' : 'invalid'
      },
      () => {
        result.workMs = performance.now() - started
        return result.status === 'applied'
      },
    )
  } catch (error) {
    if (!(error instanceof ToolFailure)) throw error
    result.status = 'failed'
    result.problems = [error.message]
  } finally {
    result.holdMs = performance.now() - started
  }
  if (result.status !== 'applied') result.writesApplied = 0
  else {
    result.appliedWrites = plan.writes.map((write) => ({
      tool: write.tool,
      args: write.args as Record<string, unknown>,
      idempotencyKey: write.idempotencyKey,
      earlier: false,
    }))
    crashPoint('apply-commit')
  }
  return result
}

/** Live validation: the finding's rule and every rule over the scope, compared with what the plan saw. */
async function validateLive(store: InventoryBackend, plan: Plan): Promise<string[]> {
  const before = new Set(plan.validation.findingsBefore)
  const after = await store.detectInScope(scopeFromJson(plan.scope))
  return after
    .filter((current) => current.id === plan.findingId || !before.has(current.id))
    .map((current) =>
      current.id === plan.findingId
        ? `the finding is still present on the live data (${JSON.stringify(current.evidence)})`
        : `a new finding appeared on the live data: ${current.id}`,
    )
}

function describePlanWrite(write: {tool: string; args: Record<string, unknown>; idempotencyKey: string}): string {
  const {reason: _reason, ...target} = write.args
  return `${write.tool} ${JSON.stringify(target)} (key ${write.idempotencyKey.slice(0, 12)})`
}

/**
 * Apply on an inventory that cannot roll back (docs/architecture.md, "Backends without
 * rollback"): the same checks (keys already recorded, fingerprint, impact), then the writes are
 * sent whole, in order, each under its idempotency key, and the result is validated by reading
 * back. The first write that fails stops the rest; whatever landed is reported write by write, so
 * that the finding is escalated with exactly that list (sending the plan again is safe: the keys
 * make the inventory answer a repeat from its record).
 */
async function applyWithoutRollback(store: InventoryBackend, plan: Plan, options: ApplyOptions): Promise<ApplyResult> {
  const result = emptyResult()
  if (!store.sendWrite) throw new Error(`${store.location} cannot roll back and offers no sendWrite`)
  const started = performance.now()
  const landed = () => result.appliedWrites.length > 0
  const stop = (status: ApplyStatus, problem: string) => {
    result.status = landed() ? 'partial' : status
    result.problems = [problem]
    if (landed()) {
      result.problems.push(
        `applied before that, and not rolled back (${store.location} cannot roll back): ` +
          result.appliedWrites.map((write, index) => `${index + 1}. ${describePlanWrite(write)}`).join('; '),
      )
    }
  }
  try {
    const recorded = await Promise.all(plan.writes.map((write) => store.findAction(write.idempotencyKey)))
    if (plan.writes.length > 0 && recorded.every((action) => action !== undefined)) {
      result.status = 'already_applied'
      return result
    }
    const now = await readAgain(store, plan.reads)
    // A rerun after a partial apply sees its own earlier writes: the fingerprint is checked only
    // when nothing of the plan has landed yet.
    if (recorded.every((action) => action === undefined) && fingerprintOf(now) !== plan.fingerprint) {
      result.status = 'stale'
      result.changes = describeChanges(plan, now)
      if (result.changes.length === 0) result.changes = ['the rows the plan read changed']
      return result
    }
    for (const [index, write] of plan.writes.entries()) {
      const args = write.args as ToolArgs<WriteToolName>
      const planned = {
        tool: write.tool,
        args: write.args as Record<string, unknown>,
        idempotencyKey: write.idempotencyKey,
      }
      if (recorded[index] !== undefined) {
        result.appliedWrites.push({...planned, earlier: true})
        continue
      }
      const impact = await previewWrite(store, write.tool as WriteToolName, args)
      if (impactSize(impact) !== impactSize(write.impact) || impact.partId !== write.impact.partId) {
        const moved = `${impactSize(impact)}, not ${impactSize(write.impact)}`
        result.changes = [`${write.tool} would now move stock by ${moved}`]
        if (!landed()) {
          result.status = 'stale'
          return result
        }
        stop('stale', `write ${index + 1} of ${plan.writes.length} was not sent: ${result.changes[0]}`)
        return result
      }
      if (options.maxImpact !== undefined && impactSize(impact) > options.maxImpact) {
        const size = impactSize(impact)
        stop('failed', `${write.tool} would move stock by ${size}, above the bound of ${options.maxImpact}`)
        return result
      }
      let written: WriteResult
      try {
        written = await store.sendWrite(write.tool as WriteToolName, args, {
          runId: plan.runId,
          findingId: plan.findingId,
          idempotencyKey: write.idempotencyKey,
        })
      } catch (error) {
        const maybe = (error as {maybeApplied?: boolean}).maybeApplied === true
        stop(
          'failed',
          `write ${index + 1} of ${plan.writes.length} (${describePlanWrite(planned)}) failed` +
            `${maybe ? ' and may have been applied (no answer came back)' : ''}: ${(error as Error).message}`,
        )
        return result
      }
      if (!written.applied) {
        stop('invalid', `${write.tool} changed nothing on the live inventory: ${written.message}`)
        return result
      }
      result.appliedWrites.push({...planned, earlier: false})
      result.writesApplied++
      crashPoint('apply-write')
    }
    result.workMs = performance.now() - started
    const problems = await validateLive(store, plan)
    if (problems.length > 0) {
      stop('invalid', `the writes were applied but the live data does not validate: ${problems.join('; ')}`)
      return result
    }
    result.status = 'applied'
    return result
  } finally {
    result.holdMs = performance.now() - started
    if (result.workMs === 0) result.workMs = result.holdMs
  }
}
