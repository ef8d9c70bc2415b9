import type {PostgresScanName, SqliteScanName} from './rule-definition.js'

/*
 * The scans that several rules of the registry share (docs/architecture.md, "Rules"), defined once here: a rule
 * names one in `from: {scan}` and keeps its own filter, follow-up SQL and mapping in its entry. Each scan runs
 * once per detection, however many of its rules are asked for.
 */

/*
 * The factor of a posted row `t` of part `p`: STOCK_DELTA_SQL's, with the conversion looked up only
 * for rows not in the part's own unit. A join on uom_conversions would seek once per transaction;
 * most rows are in the part's unit and need no lookup.
 */
export const SQLITE_FACTOR_SQL =
  'CASE WHEN t.uom = p.uom THEN 1 ELSE (SELECT c.factor FROM uom_conversions c WHERE c.part_id = p.id AND ' +
  'c.uom = t.uom) END'
const POSTED_OF_PART =
  `transactions t INDEXED BY idx_transactions_ledger WHERE ` + `t.status = 'posted' AND t.part_id = p.id`
const BALANCE_OF_PART_SQL = `SELECT COALESCE(SUM(t.qty * ${SQLITE_FACTOR_SQL}), 0) FROM ${POSTED_OF_PART}`
const UNCONVERTIBLE_OF_PART_SQL = `SELECT COALESCE(SUM((${SQLITE_FACTOR_SQL}) IS NULL), 0) FROM ${POSTED_OF_PART}`

/*
 * SQLite `part_ledger` (ledger_mismatch, uom_mismatch): one seek per part into the ledger index,
 * balance and unconvertible count from a single row-value subquery, so the parts are read once and
 * only the flagged ones come back: grouping all postings first and joining the groups to parts takes
 * about half as long again. The select list runs only for flagged parts, where it splits the flag into
 * its two causes; `<>` keeps the NULL semantics of comparing on_hand with the balance directly.
 */
const PART_LEDGER_SQL =
  `
  SELECT p.id AS id, p.on_hand AS on_hand, (${BALANCE_OF_PART_SQL}) AS balance,
         p.on_hand <> ` +
  `(${BALANCE_OF_PART_SQL}) AS mismatch, (${UNCONVERTIBLE_OF_PART_SQL}) AS unconvertible
  FROM parts p
  ` +
  `WHERE (p.on_hand, 0) <> (SELECT COALESCE(SUM(t.qty * ${SQLITE_FACTOR_SQL}), 0), ` +
  `COALESCE(SUM((${SQLITE_FACTOR_SQL}) IS NULL), 0) FROM ${POSTED_OF_PART})`

/** A row of `part_ledger`. */
export interface SqlitePartLedgerRow {
  id: string
  on_hand: number
  balance: number
  mismatch: number | null
  unconvertible: number
}

/**
 * PostgreSQL `ledger` (ledger_mismatch, uom_mismatch, orphan_transaction): one pass over the posted
 * ledger, shaped like the bare aggregate: the (part, unit) groups are joined to the parts (a full
 * join, so parts without postings and part ids that name no part both appear) and their conversions,
 * and grouped per part. Rows come back only for parts whose cache differs from the ledger or that
 * have postings in a unit without a conversion, and for orphan part ids (`id` NULL; `orphan_part_id`
 * NULL too when the transactions have no part id).
 */
const LEDGER_PASS_SQL = `
  SELECT p.id AS id, g.part_id AS orphan_part_id, p.on_hand AS on_hand,
         COALESCE(SUM(g.q * CASE WHEN g.uom = p.uom THEN 1 ELSE c.factor END), 0) AS balance,
         COALESCE(SUM(CASE WHEN g.uom = p.uom OR c.factor IS NOT NULL THEN 0 ELSE g.n END), 0) AS unconvertible
  FROM (SELECT part_id, uom, SUM(qty) AS q, COUNT(*) AS n
        FROM transactions WHERE status = 'posted' GROUP BY part_id, uom) g
  FULL JOIN parts p ON p.id = g.part_id
  LEFT JOIN uom_conversions c ON c.part_id = g.part_id AND c.uom = g.uom
  GROUP BY p.id, g.part_id
  HAVING p.id IS NULL
      OR p.on_hand <> COALESCE(SUM(g.q * CASE WHEN g.uom = p.uom THEN 1 ELSE c.factor END), 0)
      OR SUM(CASE WHEN g.uom = p.uom OR c.factor IS NOT NULL THEN 0 ELSE g.n END) > 0`

/** A row of `ledger`. */
export interface PostgresLedgerRow {
  id: string | null
  orphan_part_id: string | null
  on_hand: number
  balance: number
  unconvertible: number
}

export const SQLITE_SCANS: Readonly<Record<SqliteScanName, string>> = {part_ledger: PART_LEDGER_SQL}
export const POSTGRES_SCANS: Readonly<Record<PostgresScanName, string>> = {ledger: LEDGER_PASS_SQL}

/*
 * The scoped scans: one row per given part or transaction, to which each rule adds its columns
 * (`columns` of its scoped detection). `p` is the part; for transactions, `t` the transaction, `p` its
 * part and `c` the conversion of its unit (both NULL when missing). SQLite runs them once per id,
 * PostgreSQL once for all ids (`= ANY($1)`).
 */
export const SCOPED_PART_COLUMNS = ['p.id AS id', 'p.on_hand AS on_hand', 'p.reserved AS reserved']
export const SCOPED_TRANSACTION_COLUMNS = [
  't.id AS id',
  't.part_id AS part_id',
  't.sku AS sku',
  't.uom AS uom',
  't.qty AS qty',
  't.status AS status',
  't.source AS source',
  't.external_ref AS external_ref',
  't.created_at AS created_at',
  'p.id IS NOT NULL AS part_exists',
  'p.uom AS part_uom',
  'c.factor AS factor',
]
const SCOPED_PART_FROM = 'FROM parts p'
const SCOPED_TRANSACTION_FROM =
  'FROM transactions t LEFT JOIN parts p ON p.id = t.part_id ' +
  'LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom'

export const SCOPED_FROM = {
  sqlite: {part: `${SCOPED_PART_FROM} WHERE p.id = ?`, transaction: `${SCOPED_TRANSACTION_FROM} WHERE t.id = ?`},
  postgres: {
    part: `${SCOPED_PART_FROM} WHERE p.id = ANY($1)`,
    transaction: `${SCOPED_TRANSACTION_FROM} WHERE t.id = ANY($1)`,
  },
} as const

/** The columns every scoped part row has, whatever the rules add. */
export interface ScopedPartRow {
  id: string
  on_hand: number
  reserved: number
}

/** The columns every scoped transaction row has (`part_exists` is 0/1 on SQLite, a boolean on PostgreSQL). */
export interface ScopedTransactionRow {
  id: string
  part_id: string | null
  sku: string
  uom: string
  qty: number
  status: string
  source: string
  external_ref: string
  created_at: number
  part_exists: number | boolean
  part_uom: string | null
  factor: number | null
}
