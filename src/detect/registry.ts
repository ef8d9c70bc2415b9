import {duplicatePosting} from './rules/duplicate_posting.js'
import {ledgerMismatch} from './rules/ledger_mismatch.js'
import {negativeOnHand} from './rules/negative_on_hand.js'
import {orphanTransaction} from './rules/orphan_transaction.js'
import {reservationDrift} from './rules/reservation_drift.js'
import {stuckPending} from './rules/stuck_pending.js'
import {syncError} from './rules/sync_error.js'
import {uomMismatch} from './rules/uom_mismatch.js'

/*
 * The rule registry (docs/architecture.md, "Rules"): one entry per detection rule, in the order findings of the
 * same severity are listed (part-level rules before the transaction rules they often explain). RULES,
 * ROOT_CAUSES and RULE_INFO are made from it; the detectors run its SQL.
 */
export const REGISTRY = [
  negativeOnHand,
  ledgerMismatch,
  stuckPending,
  syncError,
  duplicatePosting,
  orphanTransaction,
  reservationDrift,
  uomMismatch,
] as const
