import {TRANSACTION_ROW_COLUMNS} from './backend.js'
import {PG_NORMALIZED_SKU_SQL, PG_STOCK_DELTA_SQL} from './postgres/schema.js'
import {NORMALIZED_SKU_SQL, STOCK_DELTA_SQL} from './schema.js'

/*
 * The read queries of the SQL backends (docs/architecture.md, "Backends"): each written once, with `?`
 * placeholders and the few words that differ between the dialects, and kept here in both. The SQLite
 * backend runs `[sqlite]`, the PostgreSQL backend `[postgres]` (placeholders numbered `$1`, `$2`, …);
 * src/inventory/sql-reads.ts shapes what they return.
 */

export type Dialect = 'sqlite' | 'postgres'

/** One statement in each dialect. */
export type DialectSql = Readonly<Record<Dialect, string>>

/** What differs between the dialects in the read queries. */
interface Words {
  /** A transaction's change to its part's stock, in the part's unit (over TRANSACTION_FROM). */
  stockDelta: string
  normalizedSku: string
  /** `column` is one of the ids bound as one parameter (a JSON array on SQLite, an array on PostgreSQL). */
  inIds(column: string): string
  /** A JSON object of `'key', value` pairs. */
  jsonObject(pairs: string): string
  /** A JSON array of `value` over `columns` of the rows of `from`, ordered by `orderBy`; `[]` when none. */
  jsonArray(value: string, columns: string, from: string, orderBy: string): string
}

const WORDS: Record<Dialect, Words> = {
  sqlite: {
    stockDelta: STOCK_DELTA_SQL,
    normalizedSku: NORMALIZED_SKU_SQL,
    // `IN (SELECT value FROM json_each(?))` seeks the index once per id.
    inIds: (column) => `${column} IN (SELECT value FROM json_each(?))`,
    jsonObject: (pairs) => `json_object(${pairs})`,
    jsonArray: (value, columns, from, orderBy) =>
      `(SELECT json_group_array(${value}) FROM (SELECT ${columns} FROM ${from} ORDER BY ${orderBy}))`,
  },
  postgres: {
    stockDelta: PG_STOCK_DELTA_SQL,
    normalizedSku: PG_NORMALIZED_SKU_SQL,
    inIds: (column) => `${column} = ANY(?)`,
    jsonObject: (pairs) => `json_build_object(${pairs})`,
    jsonArray: (value, _columns, from, orderBy) =>
      `(SELECT COALESCE(json_agg(${value} ORDER BY ${orderBy}), '[]') FROM ${from})`,
  },
}

/** A statement written with `?` placeholders, in one dialect. */
export function sqlIn(dialect: Dialect, build: (words: Words) => string): string {
  const sql = build(WORDS[dialect])
  if (dialect === 'sqlite') return sql
  let n = 0
  return sql.replaceAll('?', () => `$${++n}`)
}

function both(build: (words: Words) => string): DialectSql {
  return {sqlite: sqlIn('sqlite', build), postgres: sqlIn('postgres', build)}
}

export const PART_COLUMNS = 'id, sku, name, uom, on_hand, reserved, location, updated_at'
export const RESERVATION_COLUMNS = 'id, part_id, qty, order_ref, status, created_at'
const ROW_COLUMNS = TRANSACTION_ROW_COLUMNS.join(', ')
const ACTION_COLUMNS = 'idempotency_key, run_id, finding_id, tool, args, result, at'

const transactionColumns = ({stockDelta}: Words) =>
  't.id, t.part_id, t.sku, t.kind, t.qty, t.uom, t.status, t.source, t.external_ref, t.created_at, t.posted_at, ' +
  `${stockDelta} AS stock_delta`
const TRANSACTION_FROM =
  'transactions t LEFT JOIN parts p ON p.id = t.part_id ' +
  'LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom'

/** The transactions matching `condition` (over `t`), newest first, at most `?` of them. */
export const transactionPageSql = (dialect: Dialect, condition: string) =>
  sqlIn(
    dialect,
    (words) =>
      `SELECT ${transactionColumns(words)} FROM ${TRANSACTION_FROM} WHERE ${condition} ` +
      'ORDER BY t.created_at DESC, t.id DESC LIMIT ?',
  )

/** How many transactions match `condition` (over `t`). */
export const transactionCountSql = (dialect: Dialect, condition: string) =>
  sqlIn(dialect, () => `SELECT count(*) AS n FROM transactions t WHERE ${condition}`)

export const READ_QUERIES = {
  /** A part row with its conversions and aliases as JSON arrays, each ordered as the tools show them. */
  part: both(({jsonArray, jsonObject}) => {
    const conversion = jsonObject("'uom', uom, 'factor', factor")
    const conversions = jsonArray(conversion, 'uom, factor', 'uom_conversions WHERE part_id = p.id', 'uom')
    const aliases = jsonArray('alias', 'alias', 'sku_aliases WHERE part_id = p.id', 'alias')
    return (
      'SELECT p.id, p.sku, p.name, p.uom, p.on_hand, p.reserved, p.location, p.updated_at, ' +
      `${conversions} AS conversions, ${aliases} AS aliases FROM parts p WHERE p.id = ?`
    )
  }),
  partBySku: both(() => 'SELECT id, sku FROM parts WHERE sku = ?'),
  partByAlias: both(
    () => 'SELECT p.id AS id, p.sku AS sku FROM sku_aliases a JOIN parts p ON p.id = a.part_id WHERE a.alias = ?',
  ),
  partsByNormalizedSku: both(({normalizedSku}) => `SELECT id, sku FROM parts WHERE ${normalizedSku} = ? ORDER BY id`),
  transaction: both((words) => `SELECT ${transactionColumns(words)} FROM ${TRANSACTION_FROM} WHERE t.id = ?`),
  /** A part's posted transactions: how many, how many without a stock delta, the largest delta. */
  ledgerStats: both(
    ({stockDelta}) =>
      `SELECT count(*) AS posted, count(*) - count(${stockDelta}) AS unconvertible, ` +
      `COALESCE(MAX(abs(${stockDelta})), 0) AS largest ` +
      `FROM ${TRANSACTION_FROM} WHERE t.part_id = ? AND t.status = 'posted'`,
  ),
  activeReserved: both(
    () => "SELECT COALESCE(SUM(qty), 0) AS n FROM reservations WHERE part_id = ? AND status = 'active'",
  ),
  integrationEvents: both(
    () => 'SELECT id, txn_id, at, level, message FROM integration_events WHERE txn_id = ? ORDER BY at, id',
  ),
  /** A part's reservations, of one status or (NULL) all, with what has shipped against each order. */
  reservations: both(
    ({stockDelta}) =>
      `SELECT r.id, r.part_id, r.qty, r.order_ref, r.status, r.created_at, ` +
      `COALESCE((SELECT -SUM(${stockDelta}) FROM ${TRANSACTION_FROM} ` +
      'WHERE t.external_ref = r.order_ref AND t.part_id = r.part_id ' +
      "AND t.status = 'posted' AND t.kind = 'issue'), 0) AS shipped_qty " +
      'FROM reservations r WHERE r.part_id = ? AND r.status = COALESCE(?, r.status) ORDER BY r.created_at, r.id',
  ),
  reservation: both(() => `SELECT ${RESERVATION_COLUMNS} FROM reservations WHERE id = ?`),
  action: both(() => `SELECT ${ACTION_COLUMNS} FROM agent_actions WHERE idempotency_key = ?`),
  recordAction: both(() => `INSERT INTO agent_actions (${ACTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`),

  // readRows: one query per table, each id list bound as one parameter, rows sorted by primary key.
  partRows: both(({inIds}) => `SELECT ${PART_COLUMNS} FROM parts WHERE ${inIds('id')} ORDER BY id`),
  conversionRows: both(
    ({inIds}) => `SELECT part_id, uom, factor FROM uom_conversions WHERE ${inIds('part_id')} ORDER BY part_id, uom`,
  ),
  aliasRows: both(
    ({inIds}) => `SELECT alias, part_id FROM sku_aliases WHERE ${inIds('part_id')} ORDER BY part_id, alias`,
  ),
  /**
   * The transactions of some parts, some ids and some external refs (three lists). SQLite seeks
   * each index through a UNION; PostgreSQL reads them in one statement it can lock (`FOR UPDATE`
   * takes no UNION).
   */
  transactionRows: {
    sqlite: sqlIn(
      'sqlite',
      ({inIds}) =>
        `SELECT ${ROW_COLUMNS} FROM transactions WHERE ${inIds('part_id')} UNION ` +
        `SELECT ${ROW_COLUMNS} FROM transactions WHERE ${inIds('id')} UNION ` +
        `SELECT ${ROW_COLUMNS} FROM transactions WHERE ${inIds('external_ref')} ORDER BY id`,
    ),
    postgres: sqlIn(
      'postgres',
      ({inIds}) =>
        `SELECT ${ROW_COLUMNS} FROM transactions ` +
        `WHERE ${inIds('part_id')} OR ${inIds('id')} OR ${inIds('external_ref')} ORDER BY id`,
    ),
  },
  reservationRows: both(
    ({inIds}) => `SELECT ${RESERVATION_COLUMNS} FROM reservations WHERE ${inIds('part_id')} ORDER BY id`,
  ),
} as const satisfies Record<string, DialectSql>
