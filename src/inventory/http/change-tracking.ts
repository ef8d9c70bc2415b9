import {randomUUID} from 'node:crypto'

import {referenceTable} from '../schema-columns.js'
import type {SqliteConnection} from '../sqlite-connection.js'

/*
 * Change tracking for incremental sync over the REST contract (docs/architecture.md §5a).
 *
 * Every row of a synced table carries `row_version`: a value from one inventory-wide sequence,
 * set by triggers on insert and update, and deleted rows leave a tombstone with the next value.
 * SQLite has one writer at a time, so a reader that sees version N sees every change up to N:
 * "everything with a version above the watermark I last saw" is exact, with no lag window.
 *
 * Triggers, not application code, so that changes made by any writer are seen, including the
 * direct SQL edits that cause cache drift in the first place. The columns are added with a
 * default (rows that predate tracking have version 0, below the first watermark, 1, so the first
 * full sync reads them) and
 * everything is created only if missing: the reference schema stays backward compatible.
 */

export interface SyncTableSpec {
  name: 'parts' | 'transactions' | 'reservations' | 'sku_aliases' | 'uom_conversions' | 'agent_actions'
  /** Columns of the reference schema sent to clients, primary key first. */
  columns: readonly string[]
  /** Primary key columns (cursor and tombstones). */
  key: readonly string[]
}

/** The synced tables; their columns and keys come from the reference schema's description. */
export const SYNC_TABLES: readonly SyncTableSpec[] = (
  [
    'parts',
    'transactions',
    'reservations',
    'sku_aliases',
    'uom_conversions',
    // The writes applied under idempotency keys: a mirror's sandbox must know which keys are spent.
    'agent_actions',
  ] as const
).map((name) => {
  const table = referenceTable(name)
  return {name, key: table.primaryKey, columns: table.columns.map((column) => column.name)}
})

export type SyncTableName = SyncTableSpec['name']

export const SYNC_TABLE_NAMES = SYNC_TABLES.map((table) => table.name) as SyncTableName[]

export function syncTable(name: SyncTableName): SyncTableSpec {
  return SYNC_TABLES.find((table) => table.name === name)!
}

const NEXT_VERSION = '(SELECT value FROM invagent_change_seq WHERE id = 1)'
const BUMP = 'UPDATE invagent_change_seq SET value = value + 1 WHERE id = 1;'

function keyMatch(table: SyncTableSpec): string {
  return table.key.map((column) => `${column} = NEW.${column}`).join(' AND ')
}

function trackingSql(table: SyncTableSpec): string {
  const stamp = `UPDATE ${table.name} SET row_version = ${NEXT_VERSION} WHERE ${keyMatch(table)};`
  const tombstoneKey = `json_array(${table.key.map((column) => `OLD.${column}`).join(', ')})`
  return `
CREATE INDEX IF NOT EXISTS idx_${table.name}_row_version ON ${table.name} (row_version, ${table.key.join(', ')});
CREATE TRIGGER IF NOT EXISTS invagent_track_${table.name}_insert AFTER INSERT ON ${table.name}
BEGIN ${BUMP} ${stamp} END;
CREATE TRIGGER IF NOT EXISTS invagent_track_${table.name}_update AFTER UPDATE ON ${table.name}
WHEN NEW.row_version IS OLD.row_version
BEGIN ${BUMP} ${stamp} END;
CREATE TRIGGER IF NOT EXISTS invagent_track_${table.name}_delete AFTER DELETE ON ${table.name}
BEGIN ${BUMP}
  INSERT INTO invagent_deletions (table_name, row_key, row_version)
  VALUES ('${table.name}', ${tombstoneKey}, ${NEXT_VERSION});
END;`
}

/**
 * Makes an inventory ready to be served for incremental sync; does nothing when it already is.
 * Returns whether anything was created. Rows are never changed, only columns, tables, indexes
 * and triggers added.
 */
export function prepareChangeTracking(db: SqliteConnection): {changed: boolean} {
  const ready = db.get(
    `SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'invagent_track_agent_actions_delete'`,
  )
  if (ready) return {changed: false}
  db.exec('BEGIN IMMEDIATE')
  try {
    db.exec(`
CREATE TABLE IF NOT EXISTS invagent_change_seq (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT OR IGNORE INTO invagent_change_seq (id, value) VALUES (1, 1);
CREATE TABLE IF NOT EXISTS invagent_deletions (
  row_version INTEGER PRIMARY KEY,
  table_name TEXT NOT NULL,
  row_key TEXT NOT NULL
);`)
    for (const table of SYNC_TABLES) {
      const columns = new Set(
        db.all<{name: string}>(`SELECT name FROM pragma_table_info('${table.name}')`).map((row) => row.name),
      )
      if (!columns.has('row_version'))
        db.exec(`ALTER TABLE ${table.name} ADD COLUMN row_version INTEGER NOT NULL DEFAULT 0`)
      db.exec(trackingSql(table))
    }
    db.run(`INSERT OR IGNORE INTO invagent_meta (key, value) VALUES ('inventory_id', ?)`, randomUUID())
    db.exec('COMMIT')
  } catch (error) {
    db.exec('ROLLBACK')
    throw error
  }
  return {changed: true}
}

/** The inventory's identity: a mirror of another inventory (or of a recreated one) starts over. */
export function inventoryId(db: SqliteConnection): string {
  return db.get<{value: string}>(`SELECT value FROM invagent_meta WHERE key = 'inventory_id'`)?.value ?? ''
}

/** The version of the latest change: what a sync started now has seen everything up to. */
export function currentWatermark(db: SqliteConnection): number {
  return db.get<{value: number}>('SELECT value FROM invagent_change_seq WHERE id = 1')?.value ?? 0
}

/**
 * A cursor is the (row_version, key…) of the last row of a page: rows come in that order, so a
 * row changed while a client pages through moves past the cursor and is read again, never lost.
 */
export interface SyncCursor {
  version: number
  key: string[]
}

export function encodeCursor(cursor: SyncCursor): string {
  return Buffer.from(JSON.stringify([cursor.version, ...cursor.key])).toString('base64url')
}

/** Undefined when the text is not a cursor this server issued (the caller answers 400). */
export function decodeCursor(text: string, table: SyncTableSpec): SyncCursor | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'))
    if (!Array.isArray(parsed) || parsed.length !== table.key.length + 1) return undefined
    const [version, ...key] = parsed as unknown[]
    if (!Number.isSafeInteger(version) || !key.every((part) => typeof part === 'string')) return undefined
    return {version: version as number, key: key as string[]}
  } catch {
    return undefined
  }
}

export interface SyncPageQuery {
  updatedSince: number
  cursor?: SyncCursor
  limit: number
}

export interface SyncPageRows {
  rows: Record<string, unknown>[]
  nextCursor: SyncCursor | null
}

/** One page of a table's rows changed after `updatedSince`, in (row_version, key) order. */
export function readSyncPage(db: SqliteConnection, table: SyncTableSpec, query: SyncPageQuery): SyncPageRows {
  const order = ['row_version', ...table.key]
  // Rows that predate tracking have version 0 and watermarks start at 1: "since 0" means every row.
  const floor = query.updatedSince === 0 ? -1 : query.updatedSince
  // One range condition per query, so that SQLite seeks the index to it: a cursor is already past
  // the floor, and adding `row_version > ?` to it makes the planner scan from the floor every page.
  const where = query.cursor ? `(${order.join(', ')}) > (${order.map(() => '?').join(', ')})` : 'row_version > ?'
  const params = query.cursor ? [query.cursor.version, ...query.cursor.key] : [floor]
  const rows = db.all<Record<string, unknown>>(
    `SELECT ${table.columns.join(', ')} FROM ${table.name} INDEXED BY idx_${table.name}_row_version
     WHERE ${where} ORDER BY ${order.join(', ')} LIMIT ?`,
    ...params,
    query.limit,
  )
  // The last row's version is read on its own: deleting a column from every row costs more than the query.
  const last = rows.length === query.limit ? rows.at(-1)! : undefined
  const key = last ? table.key.map((column) => String(last[column])) : []
  const version = last
    ? db.get<{v: number}>(
        `SELECT row_version AS v FROM ${table.name} WHERE ${table.key.map((column) => `${column} = ?`).join(' AND ')}`,
        ...key,
      )!.v
    : 0
  const nextCursor = last ? {version, key} : null
  return {rows, nextCursor}
}

export interface DeletionRow {
  table: SyncTableName
  key: string[]
  version: number
}

/** Tombstones after `updatedSince`, oldest first; the cursor is the last version read. */
export function readDeletions(
  db: SqliteConnection,
  updatedSince: number,
  limit: number,
): {rows: DeletionRow[]; nextCursor: number | null} {
  const rows = db
    .all<{table_name: SyncTableName; row_key: string; row_version: number}>(
      'SELECT table_name, row_key, row_version FROM invagent_deletions WHERE row_version > ? ' +
        'ORDER BY row_version LIMIT ?',
      updatedSince,
      limit,
    )
    .map((row) => ({
      table: row.table_name,
      key: (JSON.parse(row.row_key) as unknown[]).map(String),
      version: row.row_version,
    }))
  return {rows, nextCursor: rows.length === limit ? rows.at(-1)!.version : null}
}
