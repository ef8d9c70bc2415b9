import type {WriteImpact} from '../inventory/backend.js'
import {WRITE_TOOL_NAMES, type ToolArgs, type WriteToolName} from '../tools/tools.js'
import {writeTargets} from '../tools/write-tools.js'
import type {FindingScope} from './scope.js'

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

export const DEFAULT_POLICY: PolicyOptions = {
  profile: 'standard',
  maxWritesPerFinding: 6,
  maxWritesPerRun: 1000,
  maxImpact: 100_000,
  approveAbove: 5000,
}

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

/** The first entity a write touches outside the finding's scope, said in words; undefined when all are inside. */
function outOfScope(tool: WriteToolName, args: Record<string, unknown>, scope: FindingScope): string | undefined {
  const targets = writeTargets(tool, args as ToolArgs<WriteToolName>)
  for (const txn of targets.transactions)
    if (!scope.txnIds.has(txn)) return `transaction ${txn} is outside this finding's scope`
  for (const part of targets.parts) if (!scope.partIds.has(part)) return `part ${part} is outside this finding's scope`
  for (const reservation of targets.reservations) {
    if (!scope.reservationIds.has(reservation)) return `reservation ${reservation} is outside this finding's scope`
  }
  if (targets.remap && scope.remapTargets.get(targets.remap.txnId) !== targets.remap.partId) {
    return `${targets.remap.partId} is not the one part that the SKU of ${targets.remap.txnId} resolves to`
  }
  return undefined
}

export function checkWrite(
  policy: PolicyOptions,
  scope: FindingScope,
  tool: WriteToolName,
  args: Record<string, unknown>,
  impact: WriteImpact,
  counters: WriteCounters,
): PolicyDecision {
  if (!PROFILE_TOOLS[policy.profile].has(tool))
    return {allowed: false, reason: `the "${policy.profile}" permission profile does not allow ${tool}`}
  const scopeProblem = outOfScope(tool, args, scope)
  if (scopeProblem) return {allowed: false, reason: scopeProblem}
  if (counters.finding >= policy.maxWritesPerFinding)
    return {allowed: false, reason: `at most ${policy.maxWritesPerFinding} writes per finding`}
  if (counters.run >= policy.maxWritesPerRun)
    return {allowed: false, reason: `at most ${policy.maxWritesPerRun} writes per run`}
  const size = Math.max(Math.abs(impact.onHandDelta), Math.abs(impact.reservedDelta))
  if (size > policy.maxImpact)
    return {allowed: false, reason: `it would move stock by ${size}, above the bound of ${policy.maxImpact}`}
  return {allowed: true, needsApproval: size > policy.approveAbove}
}
