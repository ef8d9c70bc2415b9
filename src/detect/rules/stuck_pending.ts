import {STUCK_PENDING_AFTER_MS} from '../../inventory/schema.js'
import {defineRule, type DetectionContext} from '../rule-definition.js'
import {
  POSTGRES_STATUS_SQL,
  SQLITE_STATUS_SQL,
  statusFinding,
  INTEGRATION_ROOT_CAUSES,
  type StatusRow,
} from './transaction-status.js'

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
  rootCauses: INTEGRATION_ROOT_CAUSES,
  sqlite: {whole: {from: {sql: SQLITE_STATUS_SQL, params}, finding: statusFinding}, scoped},
  postgres: {whole: {from: {sql: POSTGRES_STATUS_SQL, params}, finding: statusFinding}, scoped},
})
