import {ConfigError} from '../errors.js'
import {PostgresConnection} from '../inventory/postgres/connection.js'
import {SqlStateStore, stateSchemaSql, type Row, type SqlDialect, type SqlValue, type StateTable} from './sql-state.js'

/** The schema invagent's own tables live in, beside an inventory on PostgreSQL. */
export const STATE_SCHEMA = 'invagent'

/** PostgreSQL's spelling of the state store's SQL (docs/architecture.md, "State store"): `$n`, schema `invagent`. */
class PostgresDialect implements SqlDialect {
  readonly types = {text: 'text', integer: 'integer', bigint: 'bigint'}
  private readonly db: PostgresConnection

  constructor(db: PostgresConnection) {
    this.db = db
  }

  table(name: StateTable): string {
    return `${STATE_SCHEMA}.${name}`
  }

  placeholder(index: number): string {
    return `$${index}`
  }

  run(sql: string, params: SqlValue[]): Promise<number> {
    return this.db.run(sql, params)
  }

  one<T = Row>(sql: string, params: SqlValue[]): Promise<T | undefined> {
    return this.db.one<T>(sql, params)
  }

  all<T = Row>(sql: string, params: SqlValue[]): Promise<T[]> {
    return this.db.query<T>(sql, params)
  }

  close(): Promise<void> {
    return this.db.close()
  }
}

/**
 * The state store in the inventory's own PostgreSQL database, schema `invagent`
 * (docs/architecture.md, "State store"): the same tables and statements as on SQLite, and every
 * decision the same compare-and-set on the current status (`UPDATE … WHERE id = $1 AND status = $2`),
 * which PostgreSQL's row locks make atomic between processes.
 */
export class PostgresStateStore extends SqlStateStore {
  static async open(url: string): Promise<PostgresStateStore> {
    const db = await PostgresConnection.connect(url, {applicationName: 'invagent-state'})
    const dialect = new PostgresDialect(db)
    try {
      // Two processes creating the schema at once would collide: one at a time, by an advisory lock.
      await db.exec('BEGIN')
      await db.query(`SELECT pg_advisory_xact_lock(hashtext('invagent.state_schema'))`)
      await db.exec(`CREATE SCHEMA IF NOT EXISTS ${STATE_SCHEMA};${stateSchemaSql(dialect)}`)
      await db.exec('COMMIT')
    } catch (error) {
      await db.exec('ROLLBACK').catch(() => {})
      await db.close()
      throw new ConfigError(`cannot open the state store in ${db.display}: ${(error as Error).message}`, {
        code: 'STATE_UNUSABLE',
        cause: error,
        suggestions: [
          `Grant this role CREATE on the database (for schema ${STATE_SCHEMA}), or point --state at a SQLite file.`,
        ],
      })
    }
    return new PostgresStateStore(`${db.display} (schema ${STATE_SCHEMA})`, dialect)
  }
}
