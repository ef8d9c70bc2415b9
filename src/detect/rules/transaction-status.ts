import type {DetectionContext, FindingDraft} from '../rule-definition.js'

/*
 * What stuck_pending and sync_error share (docs/architecture.md, "Rules"): both flag transactions by status,
 * with the same evidence.
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
