import {defineRule} from '../rule-definition.js'
import {
  POSTGRES_STATUS_SQL,
  SQLITE_STATUS_SQL,
  statusFinding,
  INTEGRATION_ROOT_CAUSES,
  type StatusRow,
} from './transaction-status.js'

const params = () => ['error', Number.MAX_SAFE_INTEGER]
const scoped = {of: 'transaction', where: (row: StatusRow) => row.status === 'error', finding: statusFinding} as const

export const syncError = defineRule({
  name: 'sync_error',
  entity: 'transaction',
  severity: 'medium',
  description: 'status = error',
  rootCauses: INTEGRATION_ROOT_CAUSES,
  sqlite: {whole: {from: {sql: SQLITE_STATUS_SQL, params}, finding: statusFinding}, scoped},
  postgres: {whole: {from: {sql: POSTGRES_STATUS_SQL, params}, finding: statusFinding}, scoped},
})
