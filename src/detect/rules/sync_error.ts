import {defineRule} from '../rule-definition.js'
import {POSTGRES_STATUS_SQL, SQLITE_STATUS_SQL, statusFinding, type StatusRow} from './transaction-status.js'

const params = () => ['error', Number.MAX_SAFE_INTEGER]
const scoped = {of: 'transaction', where: (row: StatusRow) => row.status === 'error', finding: statusFinding} as const

export const syncError = defineRule({
  name: 'sync_error',
  entity: 'transaction',
  severity: 'medium',
  description: 'status = error',
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
