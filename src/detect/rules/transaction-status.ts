import type {DetectionContext, FindingDraft} from '../rule-definition.js'

/*
 * What stuck_pending and sync_error share (docs/architecture.md, "Rules"): both flag transactions by status,
 * with the same evidence, and a transaction stuck or failed in the integration has the same possible causes.
 */

export type StatusRow = {id: string; status: string; created_at: number; source: string}

export const SQLITE_STATUS_SQL =
  'SELECT id, status, created_at, source FROM transactions WHERE status = ? AND created_at < ?'
export const POSTGRES_STATUS_SQL =
  'SELECT id, status, created_at, source FROM transactions WHERE status = $1 AND created_at < $2'

export function statusFinding(row: StatusRow, {now}: DetectionContext): FindingDraft {
  return {
    entity: row.id,
    evidence: {status: row.status, source: row.source, age_minutes: Math.floor((now - row.created_at) / 60000)},
  }
}

/** Why a transaction is stuck pending or failed: the same for both rules. */
export const INTEGRATION_ROOT_CAUSES = [
  {
    rootCause: 'transient_sync_error',
    expected: 'fix',
    description: 'a transient integration failure (timeout, lock, unavailable)',
  },
  {
    rootCause: 'unknown_sku',
    expected: 'fix',
    description: 'the SKU as received is an alias or renamed SKU of one part',
  },
  {rootCause: 'bad_uom', expected: 'fix', description: 'the unit as received is a spelling of a unit the part knows'},
  {
    rootCause: 'unrecognized_error',
    expected: 'escalate',
    description: 'retries exhausted or the error is not understood',
  },
] as const
