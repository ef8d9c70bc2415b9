import type {FindingScope, WriteImpact} from '../inventory/backend.js'
import {WRITE_TOOL_NAMES, type WriteToolName} from '../tools/tools.js'

/**
 * The policy gate every write passes: the permission profile allows the tool, the entity is in
 * the finding's scope, the write stays within bounds, and large stock changes need approval.
 */
export type PermissionProfile = 'observe' | 'standard' | 'full'

export interface PolicyOptions {
  profile: PermissionProfile
  maxWritesPerFinding: number
  maxWritesPerRun: number
  /** Writes that would move on_hand or reserved by more than this are refused outright. */
  maxImpact: number
  /** Writes that would move on_hand or reserved by more than this need a human's approval. */
  approveAbove: number
}

export const DEFAULT_POLICY: PolicyOptions = {profile: 'standard', maxWritesPerFinding: 6, maxWritesPerRun: 1000, maxImpact: 100_000, approveAbove: 5000}

const PROFILE_TOOLS: Record<PermissionProfile, ReadonlySet<WriteToolName>> = {
  observe: new Set(),
  standard: new Set(WRITE_TOOL_NAMES.filter((name) => name !== 'adjust_quantity')),
  full: new Set(WRITE_TOOL_NAMES),
}

export type PolicyDecision = {allowed: true; needsApproval: boolean} | {allowed: false; reason: string}

export interface WriteCounters {
  finding: number
  run: number
}

/** Which entities a write touches, for the scope check. */
function outOfScope(tool: WriteToolName, args: Record<string, unknown>, scope: FindingScope): string | undefined {
  const txn = args.txn_id as string | undefined
  const part = args.part_id as string | undefined
  switch (tool) {
    case 'reprocess_transaction':
    case 'set_transaction_status':
    case 'void_transaction':
    case 'correct_transaction_uom':
      return scope.txnIds.has(txn!) ? undefined : `transaction ${txn} is outside this finding's scope`
    case 'remap_transaction_part':
      if (!scope.txnIds.has(txn!)) return `transaction ${txn} is outside this finding's scope`
      return scope.remapTargets.get(txn!) === part ? undefined : `${part} is not the one part that the SKU of ${txn} resolves to`
    case 'recompute_on_hand':
    case 'recompute_reserved':
    case 'adjust_quantity':
      return scope.partIds.has(part!) ? undefined : `part ${part} is outside this finding's scope`
    case 'release_reservation':
      return scope.reservationIds.has(args.reservation_id as string) ? undefined : `reservation ${String(args.reservation_id)} is outside this finding's scope`
  }
}

export function checkWrite(policy: PolicyOptions, scope: FindingScope, tool: WriteToolName, args: Record<string, unknown>, impact: WriteImpact, counters: WriteCounters): PolicyDecision {
  if (!PROFILE_TOOLS[policy.profile].has(tool)) return {allowed: false, reason: `the "${policy.profile}" permission profile does not allow ${tool}`}
  const scopeProblem = outOfScope(tool, args, scope)
  if (scopeProblem) return {allowed: false, reason: scopeProblem}
  if (counters.finding >= policy.maxWritesPerFinding) return {allowed: false, reason: `at most ${policy.maxWritesPerFinding} writes per finding`}
  if (counters.run >= policy.maxWritesPerRun) return {allowed: false, reason: `at most ${policy.maxWritesPerRun} writes per run`}
  const size = Math.max(Math.abs(impact.onHandDelta), Math.abs(impact.reservedDelta))
  if (size > policy.maxImpact) return {allowed: false, reason: `it would move stock by ${size}, above the bound of ${policy.maxImpact}`}
  return {allowed: true, needsApproval: size > policy.approveAbove}
}
