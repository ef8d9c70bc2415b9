/**
 * The reference inventory schema (docs/architecture.md, "Reference inventory"). It is a public contract:
 * other tools and SQL users read these tables, so columns are only ever added, never renamed. Timestamps
 * are epoch milliseconds. `invagent_meta` holds invagent's own bookkeeping (schema version, and for a
 * simulated inventory its frozen clock and seed).
 */
export const SCHEMA_VERSION = 1

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS parts (
  id TEXT PRIMARY KEY,
  sku TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  uom TEXT NOT NULL,
  on_hand INTEGER NOT NULL DEFAULT 0,
  reserved INTEGER NOT NULL DEFAULT 0,
  location TEXT NOT NULL DEFAULT '',
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
  id TEXT PRIMARY KEY,
  part_id TEXT,
  sku TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('receipt', 'issue', 'adjustment', 'transfer_in', 'transfer_out', 'return')),
  qty INTEGER NOT NULL,
  uom TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'posted', 'error', 'void')),
  source TEXT NOT NULL,
  external_ref TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  posted_at INTEGER
);
CREATE TABLE IF NOT EXISTS reservations (
  id TEXT PRIMARY KEY,
  part_id TEXT NOT NULL,
  qty INTEGER NOT NULL,
  order_ref TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'released', 'fulfilled')),
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS integration_events (
  id INTEGER PRIMARY KEY,
  txn_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  level TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sku_aliases (
  alias TEXT PRIMARY KEY,
  part_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uom_conversions (
  part_id TEXT NOT NULL,
  uom TEXT NOT NULL,
  factor INTEGER NOT NULL CHECK (factor > 0),
  PRIMARY KEY (part_id, uom)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_actions (
  idempotency_key TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  finding_id TEXT NOT NULL,
  tool TEXT NOT NULL,
  args TEXT NOT NULL,
  result TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS invagent_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`

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
export const REQUIRED_COLUMNS: Record<string, string[]> = {
  parts: ['id', 'sku', 'name', 'uom', 'on_hand', 'reserved', 'location', 'updated_at'],
  transactions: [
    'id',
    'part_id',
    'sku',
    'kind',
    'qty',
    'uom',
    'status',
    'source',
    'external_ref',
    'created_at',
    'posted_at',
  ],
  reservations: ['id', 'part_id', 'qty', 'order_ref', 'status', 'created_at'],
  integration_events: ['id', 'txn_id', 'at', 'level', 'message'],
  sku_aliases: ['alias', 'part_id'],
  uom_conversions: ['part_id', 'uom', 'factor'],
  agent_actions: ['idempotency_key', 'run_id', 'finding_id', 'tool', 'args', 'result', 'at'],
}

/** A pending transaction older than this is stuck. */
export const STUCK_PENDING_AFTER_MS = 2 * 60 * 60 * 1000

/**
 * The stock delta of a transaction row `t` in the unit of its part `p`, with `c` its conversion:
 * NULL when the part or the factor is unknown. Every query and tool uses this one expression.
 */
export const STOCK_DELTA_SQL = '(t.qty * CASE WHEN t.uom = p.uom THEN 1 ELSE c.factor END)'
