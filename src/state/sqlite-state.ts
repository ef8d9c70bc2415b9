import {mkdirSync} from 'node:fs'
import {dirname} from 'node:path'

import {ConfigError} from '../errors.js'
import {SqliteConnection} from '../inventory/sqlite-connection.js'
import {SqlStateStore, stateSchemaSql, type Row, type SqlDialect, type SqlValue, type StateTable} from './sql-state.js'

/** SQLite's spelling of the state store's SQL (docs/architecture.md, "State store"): `?`, bare table names. */
class SqliteDialect implements SqlDialect {
  readonly types = {text: 'TEXT', integer: 'INTEGER', bigint: 'INTEGER'}
  private readonly db: SqliteConnection

  constructor(db: SqliteConnection) {
    this.db = db
  }

  table(name: StateTable): string {
    return name
  }

  placeholder(): string {
    return '?'
  }

  async run(sql: string, params: SqlValue[]): Promise<number> {
    return this.db.run(sql, ...params).changes
  }

  async one<T = Row>(sql: string, params: SqlValue[]): Promise<T | undefined> {
    return this.db.get<T>(sql, ...params)
  }

  async all<T = Row>(sql: string, params: SqlValue[]): Promise<T[]> {
    return this.db.all<T>(sql, ...params)
  }

  close(): void {
    this.db.close()
  }
}

/** The state store on a SQLite file (WAL, so readers never wait for the audit). */
export class SqliteStateStore extends SqlStateStore {
  static open(path: string): SqliteStateStore {
    let db: SqliteConnection | undefined
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), {recursive: true})
      db = new SqliteConnection(path)
      db.exec('PRAGMA journal_mode = WAL')
      // WAL with NORMAL: a commit is not synced until checkpoint. A decision lost to power loss is
      // safe to make again: applying a plan is idempotent under its writes' keys.
      db.exec('PRAGMA synchronous = NORMAL')
      const dialect = new SqliteDialect(db)
      db.exec(stateSchemaSql(dialect))
      return new SqliteStateStore(path, dialect)
    } catch (error) {
      db?.close()
      throw new ConfigError(`cannot open the state store ${path}: ${(error as Error).message}`, {
        code: 'STATE_UNUSABLE',
        cause: error,
        suggestions: ['Point --state at a writable file (it is created when missing), or remove a corrupt one.'],
      })
    }
  }
}
