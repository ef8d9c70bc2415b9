import {postgresKeysSql, postgresTablesSql, type ReferenceTableName} from '../schema-columns.js'

/**
 * The reference inventory schema (docs/architecture.md, "Reference inventory") on PostgreSQL ≥ 13:
 * the same tables, columns and invariants as src/inventory/schema.ts. Text columns use the "C"
 * collation so that comparisons and ORDER BY are bytewise, as in SQLite: the same query gives
 * the same rows in the same order on both. Timestamps are epoch milliseconds in bigint. The tables
 * and keys are generated from the description in ../schema-columns.ts, with each column's type there.
 */

/** The tables without their keys: bulk loading fills them first and builds the keys afterwards. */
export const PG_TABLES_SQL = postgresTablesSql()

/** Primary keys and unique constraints, built in bulk once the rows are in. */
export const PG_KEYS_SQL = postgresKeysSql()

/** The tables of the reference schema, in the order they are loaded. */
export const PG_TABLES = [
  'parts',
  'uom_conversions',
  'sku_aliases',
  'transactions',
  'reservations',
  'integration_events',
  'invagent_meta',
] as const satisfies readonly ReferenceTableName[]

/** Same normalization as NORMALIZED_SKU_SQL in SQLite: upper() under "C" is ASCII-only there too. */
export const PG_NORMALIZED_SKU_SQL =
  "upper(replace(replace(replace(replace(sku, '-', ''), '_', ''), ' ', ''), '.', ''))"

/**
 * Indexes the detectors and tools rely on; created after bulk loading. The ledger index covers
 * the posted rows' (part_id, uom, qty), so the ledger aggregate reads the index only.
 */
export const PG_INDEX_SQL = `
CREATE INDEX IF NOT EXISTS idx_parts_sku_normalized ON parts ((${PG_NORMALIZED_SKU_SQL}));
CREATE INDEX IF NOT EXISTS idx_transactions_ledger ON transactions (part_id, uom) INCLUDE (qty) WHERE status = 'posted';
CREATE INDEX IF NOT EXISTS idx_transactions_part ON transactions (part_id, created_at);
CREATE INDEX IF NOT EXISTS idx_transactions_posted_ref ON transactions (source, external_ref) WHERE status = 'posted';
CREATE INDEX IF NOT EXISTS idx_transactions_ref ON transactions (external_ref);
CREATE INDEX IF NOT EXISTS idx_transactions_open ON transactions (status, created_at)
  WHERE status IN ('pending', 'error');
CREATE INDEX IF NOT EXISTS idx_reservations_part ON reservations (part_id, status);
CREATE INDEX IF NOT EXISTS idx_reservations_order ON reservations (order_ref);
CREATE INDEX IF NOT EXISTS idx_events_txn ON integration_events (txn_id, at);
CREATE INDEX IF NOT EXISTS idx_aliases_part ON sku_aliases (part_id);
CREATE INDEX IF NOT EXISTS idx_parts_on_hand ON parts (on_hand);
`

/** The names of the indexes in PG_INDEX_SQL. */
export const PG_REQUIRED_INDEXES = [...PG_INDEX_SQL.matchAll(/CREATE INDEX IF NOT EXISTS (\w+)/g)].map(
  (match) => match[1],
)

/** PostgreSQL's form of STOCK_DELTA_SQL: NULL when the part or the factor is unknown. */
export const PG_STOCK_DELTA_SQL = '(t.qty::bigint * CASE WHEN t.uom = p.uom THEN 1 ELSE c.factor END)'
