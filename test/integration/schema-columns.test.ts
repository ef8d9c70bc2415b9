import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {checkPostgresInventory, PostgresConnection} from '../../src/inventory/postgres/connection.js'
import {PG_INDEX_SQL, PG_KEYS_SQL, PG_TABLES_SQL} from '../../src/inventory/postgres/schema.js'
import {REFERENCE_SCHEMA, sqliteSchemaSql} from '../../src/inventory/schema-columns.js'
import {INDEX_SQL, SCHEMA_SQL} from '../../src/inventory/schema.js'
import {openInventoryDatabase, SqliteConnection} from '../../src/inventory/sqlite-connection.js'
import {temporaryDirectory} from '../helpers/cli.js'
import {createTestDatabase, postgresUnavailable} from '../helpers/postgres.js'

/*
 * The DDL generated from the column description (src/inventory/schema-columns.ts) against the DDL
 * that was written by hand before it (test/fixtures/schema/): the same tables, columns, types,
 * nullability, defaults, checks and keys, on SQLite and on PostgreSQL.
 */

const FIXTURES = resolve(import.meta.dirname, '../fixtures/schema')
const HAND_WRITTEN_SQLITE = readFileSync(join(FIXTURES, 'sqlite-v1.sql'), 'utf8')
const HAND_WRITTEN_POSTGRES = readFileSync(join(FIXTURES, 'postgres-v1.sql'), 'utf8')

const TABLES = REFERENCE_SCHEMA.map((table) => table.name)

/** Everything SQLite records about the reference tables: the CREATE text (checks included), columns, keys. */
function sqliteCatalog(db: SqliteConnection): Record<string, unknown> {
  const catalog: Record<string, unknown> = {
    tables: db.all(`SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name`),
  }
  for (const table of TABLES) {
    catalog[table] = {
      list: db.all(`SELECT type, ncol, wr, strict FROM pragma_table_list('${table}')`),
      columns: db.all(`SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_info('${table}')`),
      indexes: db
        .all<{name: string; unique: number; origin: string; partial: number}>(
          `SELECT name, "unique", origin, partial FROM pragma_index_list('${table}') ORDER BY name`,
        )
        .map((index) => ({
          ...index,
          columns: db.all(`SELECT seqno, name FROM pragma_index_info('${index.name}') ORDER BY seqno`),
        })),
    }
  }
  return catalog
}

function sqliteDatabase(sql: string, path = ':memory:'): SqliteConnection {
  const db = new SqliteConnection(path)
  db.exec(sql)
  return db
}

describe('the reference schema on SQLite', () => {
  it('is created by the generated DDL exactly as by the hand-written one', () => {
    const handWritten = sqliteDatabase(HAND_WRITTEN_SQLITE)
    const generated = sqliteDatabase(SCHEMA_SQL)
    try {
      const expected = sqliteCatalog(handWritten)
      expect(sqliteCatalog(generated)).toEqual(expected)
      // The catalog is not empty: every table, with its keys and the WITHOUT ROWID table, is in it.
      expect((expected.tables as unknown[]).length).toBe(REFERENCE_SCHEMA.length)
      expect(expected.uom_conversions).toMatchObject({list: [{wr: 1}]})
      expect(expected.parts).toMatchObject({indexes: [{origin: 'pk'}, {origin: 'u'}]})
    } finally {
      handWritten.close()
      generated.close()
    }
  })

  it('enforces the same checks, keys and defaults', () => {
    const db = sqliteDatabase(SCHEMA_SQL)
    try {
      db.run(`INSERT INTO parts (id, sku, name, uom, updated_at) VALUES ('P-1', 'S-1', 'n', 'ea', 1)`)
      expect(db.get(`SELECT on_hand, reserved, location FROM parts`)).toEqual({on_hand: 0, reserved: 0, location: ''})
      expect(() =>
        db.run(`INSERT INTO parts (id, sku, name, uom, updated_at) VALUES ('P-2', 'S-1', 'n', 'ea', 1)`),
      ).toThrow(/UNIQUE constraint failed: parts.sku/)
      const transaction = (kind: string, status: string) =>
        db.run(
          `INSERT INTO transactions (id, part_id, sku, kind, qty, uom, status, source, external_ref, created_at)
           VALUES (?, NULL, 'S-1', ?, 1, 'ea', ?, 'wms', 'r', 1)`,
          `T-${kind}-${status}`,
          kind,
          status,
        )
      transaction('receipt', 'posted')
      expect(() => transaction('gift', 'posted')).toThrow(/CHECK constraint failed: kind/)
      expect(() => transaction('issue', 'lost')).toThrow(/CHECK constraint failed: status/)
      expect(() => db.run(`INSERT INTO uom_conversions VALUES ('P-1', 'case', 0)`)).toThrow(/CHECK constraint failed/)
      expect(
        db.run(`INSERT INTO integration_events (txn_id, at, level, message) VALUES ('T', 1, 'error', 'm')`),
      ).toMatchObject({lastInsertRowid: 1})
    } finally {
      db.close()
    }
  })

  it('keeps an inventory made by the hand-written DDL opening, and the staging copy keyless', () => {
    const directory = temporaryDirectory('schema-columns-')
    const path = join(directory, 'made-before.db')
    sqliteDatabase(HAND_WRITTEN_SQLITE + INDEX_SQL, path).close()
    const opened = openInventoryDatabase(path, {requireIndexes: true})
    opened.close()

    const staging = sqliteDatabase(sqliteSchemaSql({keyless: ['transactions', 'reservations']}))
    const full = sqliteDatabase(SCHEMA_SQL)
    try {
      for (const table of TABLES) {
        const columns = (db: SqliteConnection) =>
          db.all<{name: string; type: string; notnull: number; pk: number}>(
            `SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info('${table}')`,
          )
        const keyless = table === 'transactions' || table === 'reservations'
        expect(columns(staging), table).toEqual(
          keyless
            ? columns(full).map((column) => (column.pk ? {...column, notnull: 1, pk: 0} : column))
            : columns(full),
        )
      }
    } finally {
      staging.close()
      full.close()
    }
  })
})

const skipReason = await postgresUnavailable()
if (skipReason) console.warn(`SKIPPING the PostgreSQL schema tests: ${skipReason}`)

/** Columns and constraints of the reference tables as PostgreSQL's catalogs hold them. */
async function postgresCatalog(url: string): Promise<Record<string, unknown[]>> {
  const client = new pg.Client({connectionString: url})
  await client.connect()
  try {
    const columns = await client.query(
      `SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default, collation_name,
              is_identity, identity_generation, numeric_precision
       FROM information_schema.columns WHERE table_schema = current_schema()
       ORDER BY table_name, ordinal_position`,
    )
    const constraints = await client.query(
      `SELECT conrelid::regclass::text AS table_name, conname, contype, pg_get_constraintdef(oid) AS definition
       FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
       ORDER BY table_name, conname`,
    )
    const tables = await client.query(
      `SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = current_schema()
       ORDER BY table_name`,
    )
    return {columns: columns.rows, constraints: constraints.rows, tables: tables.rows}
  } finally {
    await client.end()
  }
}

describe.skipIf(skipReason)('the reference schema on PostgreSQL', () => {
  let handWritten: Awaited<ReturnType<typeof createTestDatabase>>
  let generated: Awaited<ReturnType<typeof createTestDatabase>>

  beforeAll(async () => {
    handWritten = await createTestDatabase('schema_hand')
    generated = await createTestDatabase('schema_generated')
    const run = async (url: string, sql: string) => {
      const client = new pg.Client({connectionString: url})
      await client.connect()
      await client.query(sql).finally(() => client.end())
    }
    await run(handWritten.url, HAND_WRITTEN_POSTGRES + PG_INDEX_SQL)
    await run(generated.url, PG_TABLES_SQL + PG_KEYS_SQL + PG_INDEX_SQL)
  })

  afterAll(async () => {
    await handWritten?.drop()
    await generated?.drop()
  })

  it('is created by the generated DDL exactly as by the hand-written one', async () => {
    const expected = await postgresCatalog(handWritten.url)
    expect(await postgresCatalog(generated.url)).toEqual(expected)
    expect(expected.tables).toHaveLength(REFERENCE_SCHEMA.length)
    // Keys, the unique SKU and the checks are all there to be compared.
    expect(expected.constraints.map((row) => (row as {conname: string}).conname)).toEqual(
      expect.arrayContaining([
        'parts_pkey',
        'parts_sku_key',
        'transactions_kind_check',
        'uom_conversions_factor_check',
      ]),
    )
    expect(expected.columns).toContainEqual(
      expect.objectContaining({table_name: 'integration_events', column_name: 'id', is_identity: 'YES'}),
    )
    expect(expected.columns).toContainEqual(
      expect.objectContaining({table_name: 'agent_actions', column_name: 'run_id', collation_name: null}),
    )
  })

  it('keeps a database made by the hand-written DDL passing the schema check', async () => {
    const connection = await PostgresConnection.connect(handWritten.url)
    try {
      await expect(checkPostgresInventory(connection, {requireIndexes: true})).resolves.toBeUndefined()
    } finally {
      await connection.close()
    }
  })
})
