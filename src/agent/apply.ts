import {ToolFailure, type InventoryBackend} from '../inventory/backend.js'
import type {ToolArgs, WriteToolName} from '../tools/tools.js'
import {applyWrite, previewWrite} from '../tools/write-tools.js'
import {crashPoint} from '../util/crash-point.js'
import {describeChanges, fingerprintOf, impactSize, readAgain, scopeFromJson, type Plan} from './plan.js'

/*
 * Apply: one short unit on the live inventory (docs/architecture.md, "Apply"). Re-read what the
 * plan read; refuse it when anything changed (stale); apply its writes under their idempotency
 * keys; run the finding's rule and every rule over its scope again on the live data; commit, or
 * roll back. On SQLite the unit is one BEGIN IMMEDIATE … COMMIT lasting milliseconds.
 */

export type ApplyStatus = 'applied' | 'already_applied' | 'stale' | 'invalid' | 'failed'

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
}

export interface ApplyOptions {
  /** Refuse a write moving stock by more than this (the approval bound re-checked at approve time). */
  maxImpact?: number
}

/** Applies a plan exactly once: a plan whose every write is already recorded is reported, not applied again. */
export async function applyPlan(store: InventoryBackend, plan: Plan, options: ApplyOptions = {}): Promise<ApplyResult> {
  const result: ApplyResult = {status: 'failed', writesApplied: 0, changes: [], problems: [], holdMs: 0, workMs: 0}
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
  else crashPoint('apply-commit')
  return result
}
