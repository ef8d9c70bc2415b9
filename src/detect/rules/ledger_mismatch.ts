import {PG_STOCK_DELTA_SQL} from '../../inventory/postgres/schema.js'
import {STOCK_DELTA_SQL} from '../../inventory/schema.js'
import {defineRule, type FindingDraft} from '../rule-definition.js'
import type {PostgresLedgerRow, ScopedPartRow, SqlitePartLedgerRow} from '../scans.js'

function finding(row: {id: string | null; on_hand: number; balance: number}): FindingDraft {
  return {
    entity: row.id!,
    evidence: {on_hand: row.on_hand, ledger_balance: row.balance, difference: row.on_hand - row.balance},
  }
}

/** The part's balance: its posted stock deltas in its own unit, as a column of the scoped part scan. */
const balanceOfPart = (delta: string) =>
  `(SELECT COALESCE(SUM(${delta}), 0) FROM transactions t
     LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom
     WHERE t.part_id = p.id AND t.status = 'posted')`

type ScopedRow = ScopedPartRow & {balance: number}
const where = (row: ScopedRow) => row.balance !== row.on_hand

export const ledgerMismatch = defineRule({
  name: 'ledger_mismatch',
  entity: 'part',
  severity: 'medium',
  description: 'on_hand differs from the sum of posted stock deltas',
  rootCauses: [
    {
      rootCause: 'cache_drift',
      expected: 'fix',
      description: 'on_hand drifted from the ledger (crash or direct edit); the ledger is plausible',
    },
    {
      rootCause: 'implausible_ledger',
      expected: 'escalate',
      description: 'the ledger itself is implausible (negative balance or absurd posting)',
    },
  ],
  sqlite: {
    whole: {from: {scan: 'part_ledger'}, where: (row: SqlitePartLedgerRow) => Boolean(row.mismatch), finding},
    scoped: {of: 'part', columns: {balance: balanceOfPart(STOCK_DELTA_SQL)}, where, finding},
  },
  postgres: {
    whole: {
      from: {scan: 'ledger'},
      where: (row: PostgresLedgerRow) => row.id !== null && row.on_hand !== row.balance,
      finding,
    },
    scoped: {of: 'part', columns: {balance: balanceOfPart(PG_STOCK_DELTA_SQL)}, where, finding},
  },
})
