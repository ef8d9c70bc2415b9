import pg from 'pg'

import {ConfigError} from '../../errors.js'
import {redactLocatorText} from '../locator.js'
import {REQUIRED_COLUMNS} from '../schema.js'
import {PG_REQUIRED_INDEXES} from './schema.js'

/** int8 and numeric come back as JS numbers, as SQLite's integers do (inventory figures fit in 2^53). */
const NUMERIC_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC) return (value: string) => Number(value)
    return pg.types.getTypeParser(oid, format as 'text')
  }) as pg.CustomTypesConfig['getTypeParser'],
}

export type PgRow = Record<string, unknown>

/** Seconds to wait for a server before saying it is unreachable. */
const CONNECT_TIMEOUT_MS = 5000

/** One client connection with invagent's number parsing and errors that say what to do next. */
export class PostgresConnection {
  readonly client: pg.Client
  /** The locator with its password replaced: what messages and logs may show. */
  readonly display: string

  private constructor(client: pg.Client, display: string) {
    this.client = client
    this.display = display
  }

  /** Connects; an unreachable server, a missing database or refused credentials are ConfigErrors. */
  static async connect(url: string, options: {applicationName?: string} = {}): Promise<PostgresConnection> {
    const display = redactLocatorText(url)
    const client = new pg.Client({
      connectionString: url,
      types: NUMERIC_TYPES,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: options.applicationName ?? 'invagent',
    })
    // A server that goes away later surfaces on the next query; without a listener it would crash the process.
    client.on('error', () => {})
    try {
      await client.connect()
    } catch (error) {
      await client.end().catch(() => {})
      throw connectionError(error, display)
    }
    return new PostgresConnection(client, display)
  }

  async query<T = PgRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    const result = await this.client.query(sql, params)
    return result.rows as T[]
  }

  async one<T = PgRow>(sql: string, params: unknown[] = []): Promise<T | undefined> {
    return (await this.query<T>(sql, params))[0]
  }

  /** Runs a statement and returns how many rows it changed. */
  async run(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.client.query(sql, params)).rowCount ?? 0
  }

  async exec(sql: string): Promise<void> {
    await this.client.query(sql)
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {})
  }
}

/** Maps a connection failure to the message a person can act on. */
export function connectionError(error: unknown, display: string): ConfigError {
  const code = (error as {code?: string}).code
  const message = (error as Error).message ?? String(error)
  if (code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || /timeout/i.test(message)) {
    return new ConfigError(`cannot reach PostgreSQL at ${display}: ${message}`, {
      code: 'PG_UNREACHABLE',
      cause: error,
      suggestions: [
        'Check that the server is running and listening on that host and port (pg_lsclusters, pg_isready).',
      ],
    })
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new ConfigError(`cannot resolve the host of ${display}: ${message}`, {code: 'PG_UNREACHABLE', cause: error})
  }
  if (code === '3D000') {
    return new ConfigError(`PostgreSQL database not found: ${display}`, {
      code: 'DB_NOT_FOUND',
      cause: error,
      suggestions: [
        `Create it with the demo data: \`invagent inventory init --inventory '${display}'\`, ` +
          'or check the database name.',
      ],
    })
  }
  if (code === '28P01' || code === '28000') {
    return new ConfigError(`PostgreSQL refused the credentials for ${display}: ${message}`, {
      code: 'PG_AUTH',
      cause: error,
      suggestions: [
        'Set the password in PGPASSWORD or as ${ENV_VAR} in the locator of invagent.yaml; check the user name.',
      ],
    })
  }
  return new ConfigError(`cannot connect to PostgreSQL at ${display}: ${message}`, {code: 'PG_CONNECT', cause: error})
}

/**
 * Checks that the connected database holds the reference schema (every table and column) and,
 * unless asked not to, the indexes detection relies on.
 */
export async function checkPostgresInventory(
  connection: PostgresConnection,
  options: {requireIndexes?: boolean} = {},
): Promise<void> {
  const columns = await connection.query<{table_name: string; column_name: string}>(
    `SELECT table_name, column_name FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = ANY($1)`,
    [Object.keys(REQUIRED_COLUMNS)],
  )
  const present = new Map<string, Set<string>>()
  for (const row of columns) {
    if (!present.has(row.table_name)) present.set(row.table_name, new Set())
    present.get(row.table_name)!.add(row.column_name)
  }
  const problems: string[] = []
  for (const [table, required] of Object.entries(REQUIRED_COLUMNS)) {
    const have = present.get(table)
    if (!have) {
      problems.push(`table ${table} is missing`)
      continue
    }
    const missing = required.filter((column) => !have.has(column))
    if (missing.length > 0)
      problems.push(`table ${table} lacks column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`)
  }
  if (problems.length > 0) {
    throw new ConfigError(`${connection.display} is not an invagent inventory: ${problems.join('; ')}`, {
      code: 'DB_SCHEMA',
      suggestions: [
        'The reference schema is in the README; create a fresh inventory with `invagent inventory init --inventory …`.',
      ],
    })
  }
  if (options.requireIndexes ?? true) {
    const missing = await missingPostgresIndexes(connection)
    if (missing.length > 0) {
      throw new ConfigError(`${connection.display} lacks the indexes detection relies on: ${missing.join(', ')}`, {
        code: 'DB_INDEXES',
        suggestions: [
          `Create them once with \`invagent inventory indexes --inventory '${connection.display}'\` (no row changes).`,
        ],
      })
    }
  }
}

export async function missingPostgresIndexes(connection: PostgresConnection): Promise<string[]> {
  const rows = await connection.query<{indexname: string}>(
    'SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()',
  )
  const present = new Set(rows.map((row) => row.indexname))
  return PG_REQUIRED_INDEXES.filter((name) => !present.has(name))
}
