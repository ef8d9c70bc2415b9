import {defineRule, type FindingDraft} from '../rule-definition.js'
import type {PostgresLedgerRow, ScopedTransactionRow} from '../scans.js'

type Row = {id: string; part_id: string | null; sku: string}

const finding = (row: Row): FindingDraft => ({entity: row.id, evidence: {part_id: row.part_id, sku: row.sku}})
const findings = (rows: Row[]) => rows.map(finding)

/** SQLite: posted part ids that name no part (NULL included): one group per id, then one lookup each. */
const SQLITE_ORPHAN_PARTS_SQL = `
  SELECT d.part_id AS part_id
  FROM (SELECT DISTINCT part_id FROM transactions INDEXED BY idx_transactions_ledger WHERE status = 'posted') d
  WHERE NOT EXISTS (SELECT 1 FROM parts WHERE parts.id = d.part_id)`

const SQLITE_ORPHANS_OF_PART_SQL = `
  SELECT id, part_id, sku FROM transactions WHERE status = 'posted' AND part_id IS ?`

/** PostgreSQL: the orphan part ids come from the shared ledger scan (`id` NULL), then their rows. */
const POSTGRES_ORPHAN_ROWS_SQL = `
  SELECT id, part_id, sku FROM transactions WHERE status = 'posted' AND part_id = ANY($1)`
const POSTGRES_ORPHAN_ROWS_WITHOUT_PART_SQL = `
  SELECT id, part_id, sku FROM transactions WHERE status = 'posted' AND part_id IS NULL`

const scoped = {
  of: 'transaction',
  where: (row: ScopedTransactionRow) => row.status === 'posted' && !row.part_exists,
  finding,
} as const

export const orphanTransaction = defineRule({
  name: 'orphan_transaction',
  entity: 'transaction',
  severity: 'medium',
  description: 'a posted transaction whose part does not exist',
  rootCauses: [
    {
      rootCause: 'renamed_sku',
      expected: 'fix',
      description: 'the part was renamed and the old SKU is an unambiguous alias',
    },
    {rootCause: 'alias_missing', expected: 'escalate', description: 'no part or alias matches the SKU as received'},
    {rootCause: 'ambiguous_alias', expected: 'escalate', description: 'the SKU as received matches more than one part'},
  ],
  sqlite: {
    whole: {
      from: {sql: SQLITE_ORPHAN_PARTS_SQL, secondConnection: true},
      then: [
        {
          sql: SQLITE_ORPHANS_OF_PART_SQL,
          runs: (groups: {part_id: string | null}[]) => groups.map((group) => [group.part_id]),
          findings,
        },
      ],
    },
    scoped,
  },
  postgres: {
    whole: {
      from: {scan: 'ledger'},
      where: (row: PostgresLedgerRow) => row.id === null,
      then: [
        {
          sql: POSTGRES_ORPHAN_ROWS_SQL,
          runs: (rows: PostgresLedgerRow[]) => {
            const ids = rows.flatMap((row) => (row.orphan_part_id === null ? [] : [row.orphan_part_id]))
            return ids.length > 0 ? [[ids]] : []
          },
          findings,
        },
        {
          sql: POSTGRES_ORPHAN_ROWS_WITHOUT_PART_SQL,
          runs: (rows: PostgresLedgerRow[]) => (rows.some((row) => row.orphan_part_id === null) ? [[]] : []),
          findings,
        },
      ],
    },
    scoped,
  },
})
