/**
 * The discrepancy catalogue of docs/architecture.md ("Rules"): every detection rule and the root causes that the
 * simulator injects, the playbook diagnoses and the model must tell apart. One list, shared by
 * the tool schema (the `root_cause` enum), the simulator and the detectors.
 */
export const RULES = [
  'negative_on_hand',
  'ledger_mismatch',
  'stuck_pending',
  'sync_error',
  'duplicate_posting',
  'orphan_transaction',
  'reservation_drift',
  'uom_mismatch',
] as const
export type RuleName = (typeof RULES)[number]

export interface RootCauseInfo {
  rule: RuleName
  rootCause: string
  expected: 'fix' | 'escalate'
  /** One line for humans and for the model's system prompt. */
  description: string
}

export const ROOT_CAUSES = [
  {
    rule: 'negative_on_hand',
    rootCause: 'receipt_stuck_pending',
    expected: 'fix',
    description: 'a receipt that would cover the issues is still pending after a transient sync failure',
  },
  {
    rule: 'negative_on_hand',
    rootCause: 'duplicate_issue_posting',
    expected: 'fix',
    description: 'the same issue was posted twice',
  },
  {
    rule: 'negative_on_hand',
    rootCause: 'issue_uom_error',
    expected: 'fix',
    description: 'an issue was posted in the pack unit although the source document counted eaches',
  },
  {
    rule: 'negative_on_hand',
    rootCause: 'unexplained_shortage',
    expected: 'escalate',
    description: 'nothing in the ledger explains the shortage: a physical count is needed',
  },
  {
    rule: 'ledger_mismatch',
    rootCause: 'cache_drift',
    expected: 'fix',
    description: 'on_hand drifted from the ledger (crash or direct edit); the ledger is plausible',
  },
  {
    rule: 'ledger_mismatch',
    rootCause: 'implausible_ledger',
    expected: 'escalate',
    description: 'the ledger itself is implausible (negative balance or absurd posting)',
  },
  {
    rule: 'stuck_pending',
    rootCause: 'transient_sync_error',
    expected: 'fix',
    description: 'a transient integration failure (timeout, lock, unavailable)',
  },
  {
    rule: 'stuck_pending',
    rootCause: 'unknown_sku',
    expected: 'fix',
    description: 'the SKU as received is an alias or renamed SKU of one part',
  },
  {
    rule: 'stuck_pending',
    rootCause: 'bad_uom',
    expected: 'fix',
    description: 'the unit as received is a spelling of a unit the part knows',
  },
  {
    rule: 'stuck_pending',
    rootCause: 'unrecognized_error',
    expected: 'escalate',
    description: 'retries exhausted or the error is not understood',
  },
  {
    rule: 'sync_error',
    rootCause: 'transient_sync_error',
    expected: 'fix',
    description: 'a transient integration failure (timeout, lock, unavailable)',
  },
  {
    rule: 'sync_error',
    rootCause: 'unknown_sku',
    expected: 'fix',
    description: 'the SKU as received is an alias or renamed SKU of one part',
  },
  {
    rule: 'sync_error',
    rootCause: 'bad_uom',
    expected: 'fix',
    description: 'the unit as received is a spelling of a unit the part knows',
  },
  {
    rule: 'sync_error',
    rootCause: 'unrecognized_error',
    expected: 'escalate',
    description: 'retries exhausted or the error is not understood',
  },
  {
    rule: 'duplicate_posting',
    rootCause: 'webhook_redelivery',
    expected: 'fix',
    description: 'the same webhook was delivered twice',
  },
  {
    rule: 'duplicate_posting',
    rootCause: 'job_ran_twice',
    expected: 'fix',
    description: 'an import job ran twice over the same batch',
  },
  {
    rule: 'duplicate_posting',
    rootCause: 'already_invoiced',
    expected: 'escalate',
    description: 'the later posting was already shipped or invoiced',
  },
  {
    rule: 'orphan_transaction',
    rootCause: 'renamed_sku',
    expected: 'fix',
    description: 'the part was renamed and the old SKU is an unambiguous alias',
  },
  {
    rule: 'orphan_transaction',
    rootCause: 'alias_missing',
    expected: 'escalate',
    description: 'no part or alias matches the SKU as received',
  },
  {
    rule: 'orphan_transaction',
    rootCause: 'ambiguous_alias',
    expected: 'escalate',
    description: 'the SKU as received matches more than one part',
  },
  {
    rule: 'reservation_drift',
    rootCause: 'reserved_cache_drift',
    expected: 'fix',
    description: 'reserved drifted from the sum of active reservations',
  },
  {
    rule: 'reservation_drift',
    rootCause: 'stale_reservation',
    expected: 'fix',
    description: 'active reservations for order lines that already shipped',
  },
  {
    rule: 'reservation_drift',
    rootCause: 'picked_stock',
    expected: 'escalate',
    description: 'reservations exceed stock but none is stale: releasing would release picked stock',
  },
  {
    rule: 'uom_mismatch',
    rootCause: 'uom_label_variant',
    expected: 'fix',
    description: 'the unit is a spelling variant of a unit the part knows',
  },
  {
    rule: 'uom_mismatch',
    rootCause: 'case_vs_each',
    expected: 'fix',
    description: 'labelled in the pack unit but the source document counted eaches',
  },
  {
    rule: 'uom_mismatch',
    rootCause: 'unknown_factor',
    expected: 'escalate',
    description: 'a unit with no known conversion and no evidence of the factor',
  },
] as const satisfies readonly RootCauseInfo[]

export type RootCause = (typeof ROOT_CAUSES)[number]['rootCause']

/** Every distinct root cause name, plus "unknown" for what cannot be diagnosed. */
export const ROOT_CAUSE_NAMES = [
  ...new Set<string>(ROOT_CAUSES.map((entry) => entry.rootCause)),
  'unknown',
] as unknown as [RootCause | 'unknown', ...Array<RootCause | 'unknown'>]

export function rootCausesOf(rule: RuleName): RootCauseInfo[] {
  return ROOT_CAUSES.filter((entry) => entry.rule === rule)
}
