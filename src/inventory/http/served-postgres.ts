import {randomUUID} from 'node:crypto'

import type {WriteContext} from '../backend.js'
import {PostgresInventory} from '../postgres/backend.js'
import type {PostgresConnection} from '../postgres/connection.js'
import type {ToolArgs, WriteToolName} from '../../tools/tools.js'
import {canonicalJson} from '../../util/canonical-json.js'
import {
  decodeCursor,
  encodeCursor,
  SYNC_TABLES,
  syncTable,
  type SyncTableName,
  type SyncTableSpec,
} from './change-tracking.js'
import {CONTRACT_VERSION, type InfoResponse} from './contract.js'
import {
  type RecordedRequest,
  type ServedInventory,
  type SyncPage,
  type WriteOnceOutcome,
  writeOnceRecorded,
} from './served-inventory.js'

/*
 * A PostgreSQL inventory, served over the REST contract. Change tracking as on SQLite
 * (change-tracking.ts): a `row_version` column on each mirrored table, stamped by a trigger from
 * one counter row, and tombstones of deletions. Bumping the counter row locks it until the
 * writer commits, so versions are handed out in commit order: a reader that sees the counter at N
 * has seen every change up to N, with no lag window, whoever writes (writers of the mirrored
 * tables queue on that row: the price of exactness for a reference server).
 */

function trackingSql(table: SyncTableSpec): string {
  const keyJson = `json_build_array(${table.key.map((column) => `OLD.${column}`).join(', ')})::text`
  return `
ALTER TABLE ${table.name} ADD COLUMN IF NOT EXISTS row_version bigint NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS idx_${table.name}_row_version ON ${table.name} (row_version, ${table.key.join(', ')});
CREATE OR REPLACE FUNCTION invagent_tombstone_${table.name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE version bigint;
BEGIN
  UPDATE invagent_change_seq SET value = value + 1 WHERE id = 1 RETURNING value INTO version;
  INSERT INTO invagent_deletions (row_version, table_name, row_key) VALUES (version, '${table.name}', ${keyJson});
  RETURN OLD;
END $fn$;
DROP TRIGGER IF EXISTS invagent_track_${table.name} ON ${table.name};
CREATE TRIGGER invagent_track_${table.name} BEFORE INSERT OR UPDATE ON ${table.name}
  FOR EACH ROW EXECUTE FUNCTION invagent_stamp();
DROP TRIGGER IF EXISTS invagent_track_${table.name}_delete ON ${table.name};
CREATE TRIGGER invagent_track_${table.name}_delete AFTER DELETE ON ${table.name}
  FOR EACH ROW EXECUTE FUNCTION invagent_tombstone_${table.name}();`
}

const PREPARE_SQL = `
CREATE TABLE IF NOT EXISTS invagent_change_seq (id integer PRIMARY KEY CHECK (id = 1), value bigint NOT NULL);
INSERT INTO invagent_change_seq (id, value) VALUES (1, 1) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS invagent_deletions (
  row_version bigint PRIMARY KEY, table_name text NOT NULL, row_key text NOT NULL
);
CREATE TABLE IF NOT EXISTS invagent_http_requests (
  idempotency_key text COLLATE "C" PRIMARY KEY, tool text NOT NULL, request_sha256 text NOT NULL,
  response text NOT NULL, at bigint NOT NULL
);
CREATE OR REPLACE FUNCTION invagent_stamp() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  UPDATE invagent_change_seq SET value = value + 1 WHERE id = 1 RETURNING value INTO NEW.row_version;
  RETURN NEW;
END $fn$;
${SYNC_TABLES.map(trackingSql).join('\n')}
`

/** Adds change tracking and the request log when missing (columns with defaults; rows are not rewritten). */
async function prepare(db: PostgresConnection): Promise<void> {
  const ready = await db.one(
    `SELECT 1 FROM pg_trigger WHERE tgname = 'invagent_track_agent_actions_delete' AND NOT tgisinternal`,
  )
  if (ready) return
  await db.exec('BEGIN')
  try {
    await db.query(`SELECT pg_advisory_xact_lock(hashtext('invagent.change_tracking'))`)
    await db.exec(PREPARE_SQL)
    await db.query(`INSERT INTO invagent_meta (key, value) VALUES ('inventory_id', $1) ON CONFLICT (key) DO NOTHING`, [
      randomUUID(),
    ])
    await db.exec('COMMIT')
  } catch (error) {
    await db.exec('ROLLBACK').catch(() => {})
    throw error
  }
}

export class ServedPostgresInventory implements ServedInventory {
  readonly backend: PostgresInventory

  private constructor(backend: PostgresInventory) {
    this.backend = backend
  }

  static async open(url: string): Promise<ServedPostgresInventory> {
    const backend = await PostgresInventory.open(url)
    try {
      await prepare(backend.db)
    } catch (error) {
      await backend.close()
      throw error
    }
    return new ServedPostgresInventory(backend)
  }

  private async inventoryId(): Promise<string> {
    const row = await this.backend.db.one<{value: string}>(`SELECT value FROM invagent_meta WHERE key = 'inventory_id'`)
    return row?.value ?? ''
  }

  private async watermark(): Promise<number> {
    const row = await this.backend.db.one<{value: number}>('SELECT value FROM invagent_change_seq WHERE id = 1')
    return row?.value ?? 0
  }

  async info(): Promise<InfoResponse> {
    const frozen = (await this.backend.db.one(`SELECT 1 FROM invagent_meta WHERE key = 'clock'`)) !== undefined
    return {
      inventory_id: await this.inventoryId(),
      clock: this.backend.clock(),
      clock_frozen: frozen,
      watermark: await this.watermark(),
      contract: CONTRACT_VERSION,
    }
  }

  async syncPage(
    table: SyncTableName,
    query: {cursor?: string; updatedSince: number; limit: number},
  ): Promise<SyncPage | undefined> {
    const spec = syncTable(table)
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor, spec)
    if (query.cursor !== undefined && !cursor) return undefined
    // The watermark is read before the rows: a change after it is read again next time, never lost.
    const watermark = await this.watermark()
    const order = ['row_version', ...spec.key]
    const floor = query.updatedSince === 0 ? -1 : query.updatedSince
    const where = cursor
      ? `(${order.join(', ')}) > (${order.map((_, index) => `$${index + 1}`).join(', ')})`
      : 'row_version > $1'
    const params: unknown[] = cursor ? [cursor.version, ...cursor.key] : [floor]
    const rows = await this.backend.db.query<Record<string, unknown>>(
      `SELECT ${spec.columns.join(', ')}, row_version FROM ${spec.name}
       WHERE ${where} ORDER BY ${order.join(', ')} LIMIT $${params.length + 1}`,
      [...params, query.limit],
    )
    const last = rows.length === query.limit ? rows.at(-1)! : undefined
    const next = last ? {version: Number(last.row_version), key: spec.key.map((column) => String(last[column]))} : null
    for (const row of rows) delete row.row_version
    if (spec.name === 'agent_actions') {
      // jsonb columns come back as values; the contract carries them as JSON text, as SQLite stores them.
      for (const row of rows) {
        row.args = canonicalJson(row.args)
        row.result = JSON.stringify(row.result)
      }
    }
    return {
      rows,
      next_cursor: next ? encodeCursor(next) : null,
      watermark,
      inventory_id: await this.inventoryId(),
    }
  }

  async deletions(query: {cursor?: string; updatedSince: number; limit: number}): Promise<SyncPage | undefined> {
    const from = query.cursor === undefined ? query.updatedSince : Number(query.cursor)
    if (!Number.isSafeInteger(from) || from < 0) return undefined
    const watermark = await this.watermark()
    const rows = (
      await this.backend.db.query<{table_name: SyncTableName; row_key: string; row_version: number}>(
        `SELECT table_name, row_key, row_version FROM invagent_deletions
         WHERE row_version > $1 ORDER BY row_version LIMIT $2`,
        [from, query.limit],
      )
    ).map((row) => ({
      table: row.table_name,
      key: (JSON.parse(row.row_key) as unknown[]).map(String),
      version: row.row_version,
    }))
    return {
      rows,
      next_cursor: rows.length === query.limit ? String(rows.at(-1)!.version) : null,
      watermark,
      inventory_id: await this.inventoryId(),
    }
  }

  writeOnce(tool: WriteToolName, args: ToolArgs<WriteToolName>, context: WriteContext): Promise<WriteOnceOutcome> {
    const db = this.backend.db
    return writeOnceRecorded(this.backend, tool, args, context, {
      find: (idempotencyKey) =>
        db.one<RecordedRequest>(
          'SELECT tool, request_sha256, response FROM invagent_http_requests WHERE idempotency_key = $1 FOR UPDATE',
          [idempotencyKey],
        ),
      record: async (idempotencyKey, request) => {
        await db.query(
          `INSERT INTO invagent_http_requests (idempotency_key, tool, request_sha256, response, at)
           VALUES ($1, $2, $3, $4, $5)`,
          [idempotencyKey, request.tool, request.request_sha256, request.response, Date.now()],
        )
      },
    })
  }

  async close(): Promise<void> {
    await this.backend.close()
  }
}
