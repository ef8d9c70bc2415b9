import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, rmSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {SqliteConnection} from '../sqlite-connection.js'
import {INDEX_SQL, SCHEMA_SQL} from '../schema.js'
import {SYNC_TABLES, type SyncTableName, type SyncTableSpec} from './change-tracking.js'
import {DeletionsPage, InfoResponse, SYNC_ROW_SCHEMAS, syncPageSchema, syncPath, API_PREFIX} from './contract.js'
import {compiledSchema, type InventoryHttpClient, type ResponseSchema} from './http-client.js'

/*
 * A local SQLite copy of an HTTP inventory, in the reference schema, so that detection runs the
 * same SQL rules there (src/detect/) as on a SQLite inventory. Kept up to date by the contract's
 * bulk reads: the first sync reads every row (indexes are built after the load), later ones only
 * what changed since the watermark each table last saw, plus tombstones of deleted rows. A sync
 * that finds the inventory's watermark unchanged costs one request.
 */

const MIRROR_META_SQL = `
CREATE TABLE IF NOT EXISTS invagent_sync (
  name TEXT PRIMARY KEY,
  watermark INTEGER NOT NULL
);`

export interface SyncStats {
  /** Rows received per table (upserts), and tombstones applied. */
  rows: Record<SyncTableName, number>
  deleted: number
  requests: number
  full: boolean
  ms: number
  /** The inventory's information as read at the start of the sync. */
  info: InfoResponse
}

type RowPage = {rows: Record<string, unknown>[]; next_cursor: string | null; watermark: number}

let pageSchemas: Record<SyncTableName, ResponseSchema<RowPage>> | undefined

function pageSchema(table: SyncTableName): ResponseSchema<RowPage> {
  pageSchemas ??= Object.fromEntries(
    Object.entries(SYNC_ROW_SCHEMAS).map(([name, row]) => [name, compiledSchema(syncPageSchema(row))]),
  ) as unknown as Record<SyncTableName, ResponseSchema<RowPage>>
  return pageSchemas[table]
}

/** Where the mirror of an inventory URL lives by default: one file per URL, under `.invagent/mirrors`. */
export function defaultMirrorPath(baseUrl: string, directory = join('.invagent', 'mirrors')): string {
  const url = new URL(baseUrl)
  const digest = createHash('sha256').update(url.href).digest('hex').slice(0, 10)
  return join(
    directory,
    `${url.hostname.replace(/[^\w.-]/g, '_')}-${url.port || url.protocol.replace(':', '')}-${digest}.db`,
  )
}

export class InventoryMirror {
  readonly path: string
  private db: SqliteConnection
  private readonly pageRows: number

  private constructor(path: string, pageRows: number) {
    this.path = path
    this.pageRows = pageRows
    this.db = InventoryMirror.connect(path)
  }

  private static connect(path: string): SqliteConnection {
    mkdirSync(dirname(path), {recursive: true})
    const db = new SqliteConnection(path)
    // A mirror is a copy that a full sync rebuilds: commits need not wait for the disk. In WAL mode
    // NORMAL still never leaves a corrupt file, only possibly the last commits missing after a power cut.
    db.exec('PRAGMA journal_mode = WAL')
    db.exec('PRAGMA synchronous = NORMAL')
    db.exec(SCHEMA_SQL)
    db.exec(MIRROR_META_SQL)
    return db
  }

  static open(path: string, options: {pageRows?: number} = {}): InventoryMirror {
    return new InventoryMirror(path, options.pageRows ?? 5000)
  }

  /** True once a full sync has completed: the indexes exist and detection may run. */
  get ready(): boolean {
    return this.db.get(`SELECT 1 FROM invagent_sync WHERE name = 'inventory_id'`) !== undefined
  }

  private watermark(name: string): number {
    return this.db.get<{watermark: number}>('SELECT watermark FROM invagent_sync WHERE name = ?', name)?.watermark ?? 0
  }

  private storedInventoryId(): string | undefined {
    return this.db.get<{value: string}>(`SELECT value FROM invagent_meta WHERE key = 'mirror_of'`)?.value
  }

  /** Drops everything: the inventory was replaced, or this is the first sync. */
  private reset(): void {
    this.db.close()
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${this.path}${suffix}`, {force: true})
    this.db = InventoryMirror.connect(this.path)
  }

  /** Brings the mirror up to date with the inventory behind `client`. */
  async sync(client: InventoryHttpClient, hooks: {beforeReset?: () => void} = {}): Promise<SyncStats> {
    const started = performance.now()
    const before = client.requests
    const info = await client.get(`${API_PREFIX}/info`, InfoResponse)
    const full = !this.ready || this.storedInventoryId() !== info.inventory_id
    const stats: SyncStats = {
      rows: {parts: 0, transactions: 0, reservations: 0, sku_aliases: 0, uom_conversions: 0, agent_actions: 0},
      deleted: 0,
      requests: 0,
      full,
      ms: 0,
      info,
    }
    if (!full && this.watermark('all') === info.watermark) {
      this.setClock(info)
      return {...stats, requests: client.requests - before, ms: performance.now() - started}
    }
    if (full) {
      hooks.beforeReset?.()
      this.reset()
    } else stats.deleted = await this.applyDeletions(client)
    for (const table of SYNC_TABLES) stats.rows[table.name] = await this.syncTable(client, table)
    if (full) {
      // Tombstones older than this full read are already reflected in it.
      this.db.run('INSERT OR REPLACE INTO invagent_sync (name, watermark) VALUES (?, ?)', 'deletions', info.watermark)
      // Building the reference indexes is most of a first sync's local work; sampled statistics are
      // enough for the planner (detection names its indexes) and take a tenth of a full ANALYZE.
      this.db.exec(INDEX_SQL)
      this.db.exec('PRAGMA analysis_limit = 1000; ANALYZE')
      this.db.run(`INSERT OR REPLACE INTO invagent_meta (key, value) VALUES ('mirror_of', ?)`, info.inventory_id)
      this.db.run(`INSERT OR REPLACE INTO invagent_sync (name, watermark) VALUES ('inventory_id', 0)`)
    }
    this.db.run('INSERT OR REPLACE INTO invagent_sync (name, watermark) VALUES (?, ?)', 'all', info.watermark)
    this.setClock(info)
    return {...stats, requests: client.requests - before, ms: performance.now() - started}
  }

  /** Only writes when the clock changed: a sync that finds nothing new writes nothing. */
  private setClock(info: InfoResponse): void {
    const stored = this.db.get<{value: string}>(`SELECT value FROM invagent_meta WHERE key = 'clock'`)?.value
    const wanted = info.clock_frozen ? String(info.clock) : undefined
    if (stored === wanted) return
    if (wanted === undefined) this.db.run(`DELETE FROM invagent_meta WHERE key = 'clock'`)
    else this.db.run(`INSERT OR REPLACE INTO invagent_meta (key, value) VALUES ('clock', ?)`, wanted)
  }

  private async syncTable(client: InventoryHttpClient, table: SyncTableSpec): Promise<number> {
    const since = this.watermark(table.name)
    const placeholders = table.columns.map(() => '?').join(', ')
    const upsert = `INSERT OR REPLACE INTO ${table.name} (${table.columns.join(', ')}) VALUES (${placeholders})`
    const fetchPage = (cursor: string | null): Promise<RowPage> => {
      const query = new URLSearchParams({updated_since: String(since), limit: String(this.pageRows)})
      if (cursor !== null) query.set('cursor', cursor)
      return client.get(`${syncPath(table.name)}?${query}`, pageSchema(table.name))
    }
    let watermark: number | undefined
    let received = 0
    let next: Promise<RowPage> | undefined = fetchPage(null)
    while (next) {
      const page: RowPage = await next
      // The first page's watermark: every change after it will have a higher stamp and come next time.
      watermark ??= page.watermark
      // The next page is on its way while this one is written: the server and the mirror work at once.
      next = page.next_cursor === null ? undefined : fetchPage(page.next_cursor)
      next?.catch(() => undefined)
      this.db.exec('BEGIN')
      try {
        const statement = this.db.statement(upsert)
        for (const row of page.rows)
          statement.run(...table.columns.map((column) => row[column] as string | number | null))
        this.db.exec('COMMIT')
      } catch (error) {
        this.db.exec('ROLLBACK')
        throw error
      }
      received += page.rows.length
    }
    this.db.run('INSERT OR REPLACE INTO invagent_sync (name, watermark) VALUES (?, ?)', table.name, watermark ?? since)
    return received
  }

  private async applyDeletions(client: InventoryHttpClient): Promise<number> {
    let since = this.watermark('deletions')
    let watermark: number | undefined
    let deleted = 0
    let cursor: string | null = null
    do {
      const query = new URLSearchParams({updated_since: String(since), limit: String(this.pageRows)})
      if (cursor !== null) query.set('cursor', cursor)
      const page = await client.get(`${syncPath('deletions')}?${query}`, DeletionsPage)
      watermark ??= page.watermark
      for (const row of page.rows) {
        const table = SYNC_TABLES.find((spec) => spec.name === row.table)!
        this.db.run(
          `DELETE FROM ${table.name} WHERE ${table.key.map((column) => `${column} = ?`).join(' AND ')}`,
          ...row.key,
        )
        deleted++
      }
      cursor = page.next_cursor
    } while (cursor !== null)
    since = watermark
    this.db.run('INSERT OR REPLACE INTO invagent_sync (name, watermark) VALUES (?, ?)', 'deletions', since)
    return deleted
  }

  exists(): boolean {
    return existsSync(this.path)
  }

  close(): void {
    this.db.close()
  }
}
