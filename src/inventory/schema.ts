import {REFERENCE_SCHEMA, sqliteSchemaSql, type TableSpec} from './schema-columns.js'

/**
 * The reference inventory schema (docs/architecture.md, "Reference inventory"). It is a public contract:
 * other tools and SQL users read these tables, so columns are only ever added, never renamed. Timestamps
 * are epoch milliseconds. `invagent_meta` holds invagent's own bookkeeping (schema version, and for a
 * simulated inventory its frozen clock and seed). Its tables and columns are described once, in
 * schema-columns.ts.
 */
export const SCHEMA_VERSION = 1

/** The reference tables on SQLite, generated from their description in schema-columns.ts. */
export const SCHEMA_SQL = sqliteSchemaSql()

/**
 * A SKU upper-cased without separators: how near-matching SKUs are compared. The index below is
 * on this exact expression, so lookups by normalized SKU do not scan the parts table.
 */
export const NORMALIZED_SKU_SQL = "upper(replace(replace(replace(replace(sku, '-', ''), '_', ''), ' ', ''), '.', ''))"

/** Indexes the detectors and tools rely on; created after bulk loading. */
export const INDEX_SQL = `
CREATE INDEX IF NOT EXISTS idx_parts_sku_normalized ON parts (${NORMALIZED_SKU_SQL});
CREATE INDEX IF NOT EXISTS idx_transactions_ledger ON transactions (status, part_id, uom, qty);
CREATE INDEX IF NOT EXISTS idx_transactions_part ON transactions (part_id, created_at);
CREATE INDEX IF NOT EXISTS idx_transactions_posted_ref ON transactions (source, external_ref) WHERE status = 'posted';
CREATE INDEX IF NOT EXISTS idx_transactions_ref ON transactions (external_ref);
CREATE INDEX IF NOT EXISTS idx_transactions_status_created ON transactions (status, created_at);
CREATE INDEX IF NOT EXISTS idx_reservations_part ON reservations (part_id, status);
CREATE INDEX IF NOT EXISTS idx_reservations_active ON reservations (status, part_id, qty);
CREATE INDEX IF NOT EXISTS idx_reservations_order ON reservations (order_ref);
CREATE INDEX IF NOT EXISTS idx_events_txn ON integration_events (txn_id, at);
CREATE INDEX IF NOT EXISTS idx_aliases_part ON sku_aliases (part_id);
CREATE INDEX IF NOT EXISTS idx_parts_on_hand ON parts (on_hand);
`

/** The names of the indexes in INDEX_SQL: detection relies on every one of them. */
export const REQUIRED_INDEXES = [...INDEX_SQL.matchAll(/CREATE INDEX IF NOT EXISTS (\w+)/g)].map((match) => match[1])

/** Columns every conforming database must have (extra columns and tables are fine). */
export const REQUIRED_COLUMNS: Record<string, string[]> = Object.fromEntries(
  REFERENCE_SCHEMA.filter((table: TableSpec) => !table.bookkeeping).map((table) => [
    table.name,
    table.columns.map((column) => column.name),
  ]),
)

/** A pending transaction older than this is stuck. */
export const STUCK_PENDING_AFTER_MS = 2 * 60 * 60 * 1000

/**
 * The stock delta of a transaction row `t` in the unit of its part `p`, with `c` its conversion:
 * NULL when the part or the factor is unknown. Every query and tool uses this one expression.
 */
export const STOCK_DELTA_SQL = '(t.qty * CASE WHEN t.uom = p.uom THEN 1 ELSE c.factor END)'
