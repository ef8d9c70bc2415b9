import {STUCK_PENDING_AFTER_MS} from '../../inventory/schema.js'
import {defineRule, type DetectionContext} from '../rule-definition.js'
import {POSTGRES_STATUS_SQL, SQLITE_STATUS_SQL, statusFinding, type StatusRow} from './transaction-status.js'

const params = ({now}: DetectionContext) => ['pending', now - STUCK_PENDING_AFTER_MS]
const scoped = {
  of: 'transaction',
  where: (row: StatusRow, {now}: DetectionContext) =>
    row.status === 'pending' && row.created_at < now - STUCK_PENDING_AFTER_MS,
  finding: statusFinding,
} as const

export const stuckPending = defineRule({
  name: 'stuck_pending',
  entity: 'transaction',
  severity: 'medium',
  description: 'pending for longer than 2 hours',
  rootCauses: [
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
  ],
  sqlite: {whole: {from: {sql: SQLITE_STATUS_SQL, params}, finding: statusFinding}, scoped},
  postgres: {whole: {from: {sql: POSTGRES_STATUS_SQL, params}, finding: statusFinding}, scoped},
})
