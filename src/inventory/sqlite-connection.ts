import {existsSync, openSync, readSync, closeSync, statSync} from 'node:fs'
import {DatabaseSync, type SQLInputValue, type StatementSync} from 'node:sqlite'

import {ConfigError} from '../errors.js'
import {REQUIRED_COLUMNS, REQUIRED_INDEXES} from './schema.js'

export type Row = Record<string, SQLInputValue>

/** A node:sqlite connection with a prepared-statement cache: every query is compiled once. */
export class SqliteConnection {
  readonly db: DatabaseSync
  private readonly statements = new Map<string, StatementSync>()

  readonly path: string

  constructor(path: string, options: {readOnly?: boolean} = {}) {
    this.path = path
    this.db = new DatabaseSync(path, {readOnly: options.readOnly ?? false})
    this.db.exec('PRAGMA busy_timeout = 5000')
  }

  statement(sql: string): StatementSync {
    let statement = this.statements.get(sql)
    if (!statement) {
      statement = this.db.prepare(sql)
      this.statements.set(sql, statement)
    }
    return statement
  }

  all<T = Row>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.statement(sql).all(...params) as T[]
  }

  get<T = Row>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.statement(sql).get(...params) as T | undefined
  }

  run(sql: string, ...params: SQLInputValue[]): {changes: number; lastInsertRowid: number} {
    const result = this.statement(sql).run(...params)
    return {changes: Number(result.changes), lastInsertRowid: Number(result.lastInsertRowid)}
  }

  exec(sql: string): void {
    this.db.exec(sql)
  }

  close(): void {
    this.statements.clear()
    if (this.db.isOpen) this.db.close()
  }
}

const SQLITE_HEADER = 'SQLite format 3\u0000'

/**
 * Opens an existing inventory database and checks that it is one: the file exists, is SQLite,
 * and has every table and column of the reference schema. Each failure says what to do next.
 */
export function openInventoryDatabase(
  path: string,
  options: {readOnly?: boolean; requireIndexes?: boolean} = {},
): SqliteConnection {
  if (!existsSync(path)) {
    throw new ConfigError(`inventory database not found: ${path}`, {
      code: 'DB_NOT_FOUND',
      suggestions: [
        'Create one with `invagent inventory init --db ' + path + '`, or point --db at an existing inventory.',
      ],
    })
  }
  if (!statSync(path).isFile()) throw new ConfigError(`not a file: ${path}`, {code: 'DB_NOT_FILE'})
  const header = Buffer.alloc(16)
  const fd = openSync(path, 'r')
  try {
    readSync(fd, header, 0, 16, 0)
  } finally {
    closeSync(fd)
  }
  if (header.toString('latin1') !== SQLITE_HEADER) {
    throw new ConfigError(`${path} is not a SQLite database (its header is not "SQLite format 3")`, {
      code: 'DB_CORRUPT',
      suggestions: ['Check the path, or recreate the demo inventory with `invagent inventory init --force`.'],
    })
  }
  let connection: SqliteConnection
  try {
    connection = new SqliteConnection(path, options)
    connection.get('SELECT count(*) AS n FROM sqlite_master')
  } catch (error) {
    throw new ConfigError(`cannot open ${path}: ${(error as Error).message}`, {code: 'DB_CORRUPT', cause: error})
  }
  const problems: string[] = []
  for (const [table, columns] of Object.entries(REQUIRED_COLUMNS)) {
    const present = new Set(
      connection.all<{name: string}>(`SELECT name FROM pragma_table_info('${table}')`).map((row) => row.name),
    )
    if (present.size === 0) {
      problems.push(`table ${table} is missing`)
      continue
    }
    const missing = columns.filter((column) => !present.has(column))
    if (missing.length > 0)
      problems.push(`table ${table} lacks column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`)
  }
  if (problems.length > 0) {
    connection.close()
    throw new ConfigError(`${path} is not an invagent inventory: ${problems.join('; ')}`, {
      code: 'DB_SCHEMA',
      suggestions: [
        'The reference schema is in the README ("Reference inventory schema"); create a fresh one with `invagent inventory init`.',
      ],
    })
  }
  if (options.requireIndexes ?? true) {
    const missing = missingIndexes(connection)
    if (missing.length > 0) {
      connection.close()
      throw new ConfigError(`${path} lacks the indexes detection relies on: ${missing.join(', ')}`, {
        code: 'DB_INDEXES',
        suggestions: [
          `Create them once with \`invagent inventory indexes --db ${path}\` (adds indexes only; no row changes).`,
        ],
      })
    }
  }
  return connection
}

export function missingIndexes(connection: SqliteConnection): string[] {
  const present = new Set(
    connection.all<{name: string}>(`SELECT name FROM sqlite_master WHERE type = 'index'`).map((row) => row.name),
  )
  return REQUIRED_INDEXES.filter((name) => !present.has(name))
}
