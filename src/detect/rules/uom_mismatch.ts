import {defineRule, type FindingDraft} from '../rule-definition.js'
import {
  SQLITE_FACTOR_SQL,
  type PostgresLedgerRow,
  type ScopedTransactionRow,
  type SqlitePartLedgerRow,
} from '../scans.js'

type Row = {id: string; uom: string; qty: number; part_uom: string | null}

const finding = (row: Row): FindingDraft => ({
  entity: row.id,
  evidence: {uom: row.uom, part_uom: row.part_uom, qty: row.qty},
})
const findings = (rows: Row[]) => rows.map(finding)

/** SQLite: the unconvertible rows of one part flagged by the shared part_ledger scan. */
const SQLITE_UNCONVERTIBLE_OF_PART_SQL = `
  SELECT t.id AS id, t.uom AS uom, t.qty AS qty, p.uom AS part_uom
  FROM transactions t INDEXED BY idx_transactions_ledger JOIN parts p ON p.id = t.part_id
  WHERE t.status = 'posted' AND t.part_id = ? AND (${SQLITE_FACTOR_SQL}) IS NULL`

/** PostgreSQL: the unconvertible rows of every part flagged by the shared ledger scan. */
const POSTGRES_UNCONVERTIBLE_ROWS_SQL = `
  SELECT t.id, t.uom, t.qty, p.uom AS part_uom
  FROM transactions t JOIN parts p ON p.id = t.part_id
  WHERE t.status = 'posted' AND t.part_id = ANY($1) AND t.uom <> p.uom
    AND NOT EXISTS (SELECT 1 FROM uom_conversions c WHERE c.part_id = t.part_id AND c.uom = t.uom)`

const scoped = {
  of: 'transaction',
  where: (row: ScopedTransactionRow) =>
    row.status === 'posted' && Boolean(row.part_exists) && row.uom !== row.part_uom && row.factor === null,
  finding,
} as const

export const uomMismatch = defineRule({
  name: 'uom_mismatch',
  entity: 'transaction',
  severity: 'medium',
  description: 'a posted transaction in a unit its part has no conversion for',
  rootCauses: [
    {
      rootCause: 'uom_label_variant',
      expected: 'fix',
      description: 'the unit is a spelling variant of a unit the part knows',
    },
    {
      rootCause: 'case_vs_each',
      expected: 'fix',
      description: 'labelled in the pack unit but the source document counted eaches',
    },
    {
      rootCause: 'unknown_factor',
      expected: 'escalate',
      description: 'a unit with no known conversion and no evidence of the factor',
    },
  ],
  sqlite: {
    whole: {
      from: {scan: 'part_ledger'},
      where: (row: SqlitePartLedgerRow) => row.unconvertible > 0,
      then: [
        {
          sql: SQLITE_UNCONVERTIBLE_OF_PART_SQL,
          runs: (parts: SqlitePartLedgerRow[]) => parts.map((part) => [part.id]),
          findings,
        },
      ],
    },
    scoped,
  },
  postgres: {
    whole: {
      from: {scan: 'ledger'},
      where: (row: PostgresLedgerRow) => row.id !== null && row.unconvertible > 0,
      then: [
        {
          sql: POSTGRES_UNCONVERTIBLE_ROWS_SQL,
          runs: (parts: PostgresLedgerRow[]) => (parts.length > 0 ? [[parts.map((part) => part.id)]] : []),
          findings,
        },
      ],
    },
    scoped,
  },
})
