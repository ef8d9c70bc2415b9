import type {Finding} from '../detect/finding.js'
import {RULE_INFO} from '../detect/rules.js'
import {ToolFailure, type InventoryReads, type RowSelection} from '../inventory/backend.js'

/**
 * The entities a finding may touch; writes outside it are refused by the policy gate. Computing
 * it is policy, so it lives here over the backend's reads (docs/architecture.md, "Scope").
 */
export interface FindingScope {
  partIds: Set<string>
  txnIds: Set<string>
  reservationIds: Set<string>
  /** Parts a transaction in scope may be remapped to: only when the SKU resolves to exactly one part. */
  remapTargets: Map<string, string>
}

export function emptyScope(): FindingScope {
  return {partIds: new Set(), txnIds: new Set(), reservationIds: new Set(), remapTargets: new Map()}
}

/**
 * A part finding's scope is the part with its whole ledger and reservations; a transaction
 * finding's is the transaction, its part, the part its SKU resolves to when exactly one does,
 * and for a duplicate posting every transaction of the same (source, external_ref).
 */
export async function scopeOf(store: InventoryReads, finding: Finding): Promise<FindingScope> {
  const scope = emptyScope()
  if (RULE_INFO[finding.rule].entity === 'part') {
    const rows = await store.readRows({parts: [finding.entity], ledgers: [finding.entity]})
    scope.partIds.add(finding.entity)
    for (const row of rows.transactions) if (row.part_id === finding.entity) scope.txnIds.add(row.id)
    for (const row of rows.reservations) scope.reservationIds.add(row.id)
    return scope
  }
  const rows = await store.readRows({transactions: [finding.entity]})
  const txn = rows.transactions.find((row) => row.id === finding.entity)
  if (!txn) return scope
  scope.txnIds.add(txn.id)
  if (txn.part_id !== null && (await store.readRows({parts: [txn.part_id]})).parts.length > 0)
    scope.partIds.add(txn.part_id)
  if (finding.rule === 'duplicate_posting') {
    const sameRef = await store.readRows({externalRefs: [txn.external_ref]})
    for (const row of sameRef.transactions) if (row.source === txn.source) scope.txnIds.add(row.id)
  }
  let candidates: Set<string>
  try {
    candidates = new Set((await store.findPartsBySku(txn.sku)).matches.map((match) => match.part_id))
  } catch (error) {
    if (error instanceof ToolFailure) return scope
    throw error
  }
  if (candidates.size === 1) {
    const [target] = candidates
    scope.remapTargets.set(txn.id, target)
    scope.partIds.add(target)
  }
  return scope
}

/**
 * The rows a plan for this scope must see whole: each part with its ledger, each transaction
 * with every transaction sharing its external reference (duplicates are judged over those).
 */
export function scopeSelection(scope: FindingScope, externalRefs: Iterable<string> = []): RowSelection {
  const parts = [...scope.partIds].sort()
  return {
    parts,
    ledgers: parts,
    transactions: [...scope.txnIds].sort(),
    externalRefs: [...new Set(externalRefs)].sort(),
  }
}
