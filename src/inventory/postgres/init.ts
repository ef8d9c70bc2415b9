import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {from as copyFrom} from 'pg-copy-streams'

import {UserError} from '../../errors.js'
import type {InjectedFault} from '../../simulate/faults.js'
import {
  checkOptions,
  faultsFileText,
  generateRows,
  type InitOptions,
  type SimulationRowSink,
} from '../../simulate/generate.js'
import {postgresDatabaseOf, redactLocatorText, withPostgresDatabase} from '../locator.js'
import {columnNames, REFERENCE_SCHEMA, sqliteSchemaSql} from '../schema-columns.js'
import {SqliteConnection} from '../sqlite-connection.js'
import {PostgresConnection} from './connection.js'
import {PG_INDEX_SQL, PG_KEYS_SQL, PG_TABLES, PG_TABLES_SQL} from './schema.js'

export interface PostgresInitOptions extends Omit<InitOptions, 'path'> {
  url: string
}

export interface PostgresInitResult {
  /** The locator, credentials redacted. */
  db: string
  parts: number
  transactions: number
  faults: InjectedFault[]
  /** Milliseconds spent generating, loading (COPY) and indexing. */
  timings: {generateMs: number; copyMs: number; indexMs: number}
}

/** The tables `--force` drops: the reference schema, nothing else in the database. */
const REFERENCE_TABLES = REFERENCE_SCHEMA.map((table) => table.name)

/**
 * Generates an inventory with the simulator (the same seed gives the same rows as on SQLite)
 * and loads it into PostgreSQL with COPY, in one transaction: a failed load leaves nothing
 * behind. The database is created when it does not exist; an existing inventory is replaced
 * only with `force`. Indexes are built after the load, then the tables are vacuumed and
 * analyzed so the planner has statistics and index-only scans have a visibility map.
 */
export async function initPostgresInventory(options: PostgresInitOptions): Promise<PostgresInitResult> {
  const display = redactLocatorText(options.url)
  checkOptions({...options, path: ''})
  const connection = await connectCreatingDatabase(options.url)
  try {
    const existing = await connection.one<{n: number}>(
      `SELECT count(*)::int AS n FROM information_schema.tables
       WHERE table_schema = current_schema() AND table_name = ANY($1)`,
      [REFERENCE_TABLES],
    )
    if (existing!.n > 0 && !options.force) {
      throw new UserError(`${display} already holds inventory tables; not overwriting them`, {
        suggestions: [
          'Pass --force to replace them (only the reference tables are dropped), or name another database.',
        ],
      })
    }
    if (existing!.n > 0) await refuseForeignTables(connection, display)
    let started = performance.now()
    const staging = new SqliteConnection(':memory:')
    staging.exec(STAGING_SCHEMA_SQL)
    let generated
    let sink: CopyRows | undefined
    try {
      // Transactions, events and reservations go straight into COPY's text format as the simulator
      // makes them; the rest (which it updates and looks up) through SQLite.
      sink = options.hostileText ? undefined : new CopyRows()
      generated = generateRows(staging, {...options, path: ':memory:'} as InitOptions, sink)
      const generateMs = performance.now() - started
      started = performance.now()
      await connection.exec('BEGIN')
      await connection.exec("SET LOCAL synchronous_commit = off; SET LOCAL maintenance_work_mem = '256MB'")
      if (existing!.n > 0) {
        // No CASCADE: views or keys of other systems built on these tables are not ours to drop.
        await connection.exec(`DROP TABLE IF EXISTS ${REFERENCE_TABLES.join(', ')}`).catch((error: {code?: string}) => {
          if (error.code !== '2BP01') throw error
          throw new UserError(`${display}: other objects depend on the inventory tables; --force does not drop them`, {
            cause: error,
            suggestions: [`${(error as Error).message}. Drop or move them first, or name another database.`],
          })
        })
      }
      await connection.exec(PG_TABLES_SQL)
      for (const table of PG_TABLES) {
        await copyTable(connection, table, sink?.chunksOf(table) ?? stagedChunks(staging, table))
      }
      // The ground truth a SQLite inventory keeps in <db>.faults.json, kept here beside the rows.
      await connection.query(`INSERT INTO invagent_meta (key, value) VALUES ('ground_truth', $1)`, [
        faultsFileText(options.seed, generated.clock, generated.faults),
      ])

      await connection.exec(
        `SELECT setval(pg_get_serial_sequence('integration_events', 'id'),
                       GREATEST((SELECT max(id) FROM integration_events), 1))`,
      )
      const copyMs = performance.now() - started
      started = performance.now()
      await connection.exec(PG_KEYS_SQL)
      await connection.exec(PG_INDEX_SQL)
      await connection.exec('COMMIT')
      // COPY FREEZE left the rows frozen and all-visible: only the planner's statistics are missing.
      await connection.exec(`ANALYZE ${REFERENCE_TABLES.join(', ')}`)
      const indexMs = performance.now() - started
      return {
        db: display,
        parts: generated.parts,
        transactions: generated.transactions,
        faults: generated.faults,
        timings: {generateMs, copyMs, indexMs},
      }
    } catch (error) {
      await connection.exec('ROLLBACK').catch(() => {})
      throw error
    } finally {
      staging.close()
    }
  } finally {
    await connection.close()
  }
}

/**
 * `--force` replaces an inventory `inventory init` made, never tables of the same names that
 * another system keeps there: those are refused, whatever the flag says.
 */
async function refuseForeignTables(connection: PostgresConnection, display: string): Promise<void> {
  const generator = await connection
    .one<{value: string}>(`SELECT value FROM invagent_meta WHERE key = 'generator'`)
    .catch((error: {code?: string}) => {
      if (error.code === '42P01') return undefined
      throw error
    })
  if (generator?.value !== GENERATOR) {
    throw new UserError(`${display} has tables named like the inventory's that \`inventory init\` did not create`, {
      suggestions: ['Not even --force drops them: name a database of its own for the generated inventory.'],
    })
  }
}

/** What generateRows records in invagent_meta as the generator. */
const GENERATOR = 'invagent inventory init'

/** Connects to the named database, creating it first (on the same server) when it does not exist. */
export async function connectCreatingDatabase(url: string): Promise<PostgresConnection> {
  try {
    return await PostgresConnection.connect(url)
  } catch (error) {
    if ((error as {code?: string}).code !== 'DB_NOT_FOUND') throw error
  }
  const maintenance = await PostgresConnection.connect(withPostgresDatabase(url, 'postgres'))
  try {
    const name = postgresDatabaseOf(url)
    await maintenance.exec(`CREATE DATABASE ${quoteIdentifier(name)}`).catch((error: {code?: string}) => {
      // Another process created it in the meantime: that is what was wanted.
      if (error.code !== '42P04') throw error
    })
  } finally {
    await maintenance.close()
  }
  return PostgresConnection.connect(url)
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** COPY's text format: backslash, tab, newline and carriage return escaped; NULL as \N. */
function copyField(value: unknown): string {
  if (value === null || value === undefined) return '\\N'
  if (typeof value === 'number' || typeof value === 'bigint') return String(value)
  const text = String(value)
  if (!NEEDS_ESCAPE.test(text)) return text
  return text.replace(/[\\\t\n\r]/g, (character) => ({'\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r'})[character]!)
}

/**
 * The staging copy needs no keys on transactions and reservations: the simulator never looks
 * rows of those up by id, and PostgreSQL builds and checks the keys once the rows are in. The
 * simulator's own CREATE TABLE IF NOT EXISTS then leaves these tables as they are.
 */
const STAGING_SCHEMA_SQL = `PRAGMA journal_mode = OFF;\n${sqliteSchemaSql({keyless: ['transactions', 'reservations']})}`

const NEEDS_ESCAPE = /[\\\t\n\r]/

const CHUNK_CHARACTERS = 1 << 18

/** Lines in COPY's text format, gathered into chunks of about CHUNK_CHARACTERS. */
class ChunkedLines {
  readonly chunks: string[] = []
  private lines: string[] = []
  private size = 0

  add(row: readonly unknown[]): void {
    const line = row.map(copyField).join('\t')
    this.lines.push(line)
    this.size += line.length
    if (this.size >= CHUNK_CHARACTERS) this.flush()
  }

  flush(): void {
    if (this.lines.length === 0) return
    this.chunks.push(this.lines.join('\n') + '\n')
    this.lines = []
    this.size = 0
  }
}

/** The simulator's append-only rows, formatted for COPY as they are made. */
class CopyRows implements SimulationRowSink {
  private readonly tables = {
    transactions: new ChunkedLines(),
    integration_events: new ChunkedLines(),
    reservations: new ChunkedLines(),
  }

  transaction(row: readonly unknown[]): void {
    this.tables.transactions.add(row)
  }

  event(row: readonly unknown[]): void {
    this.tables.integration_events.add(row)
  }

  reservation(row: readonly unknown[]): void {
    this.tables.reservations.add(row)
  }

  /** The table's chunks, or undefined for a table whose rows are in the staging database. */
  chunksOf(table: string): Iterable<string> | undefined {
    const lines = this.tables[table as keyof typeof this.tables]
    if (!lines) return undefined
    lines.flush()
    return lines.chunks
  }
}

/** A staged table's rows in COPY's text format, read in chunks. */
function* stagedChunks(staging: SqliteConnection, table: (typeof PG_TABLES)[number]): Generator<string> {
  const rows = staging.db.prepare(`SELECT ${columnNames(table).join(', ')} FROM ${table}`)
  rows.setReturnArrays(true)
  const lines = new ChunkedLines()
  for (const row of rows.iterate() as Iterable<unknown[]>) {
    lines.add(row)
    if (lines.chunks.length > 0) yield lines.chunks.shift()!
  }
  lines.flush()
  yield* lines.chunks
}

async function copyTable(connection: PostgresConnection, table: (typeof PG_TABLES)[number], chunks: Iterable<string>) {
  // FREEZE: the table was created in this transaction, so its rows can be written frozen and
  // all-visible at once, sparing the VACUUM that would otherwise rewrite every page afterwards.
  const sink = connection.client.query(copyFrom(`COPY ${table} (${columnNames(table).join(', ')}) FROM STDIN (FREEZE)`))
  await pipeline(Readable.from(chunks), sink)
}
