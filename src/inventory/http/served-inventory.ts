import {createHash} from 'node:crypto'

import type {InventoryBackend, WriteContext} from '../backend.js'
import {SqliteInventory} from '../sqlite-backend.js'
import type {ToolArgs, WriteResult, WriteToolName} from '../../tools/tools.js'
import {applyWrite} from '../../tools/write-tools.js'
import {canonicalJson} from '../../util/canonical-json.js'
import {
  currentWatermark,
  decodeCursor,
  encodeCursor,
  inventoryId,
  prepareChangeTracking,
  readDeletions,
  readSyncPage,
  syncTable,
  type SyncTableName,
} from './change-tracking.js'
import {CONTRACT_VERSION, type InfoResponse} from './contract.js'

/** What the reference server needs from the inventory it serves, beside the backend interface. */
export interface ServedInventory {
  readonly backend: InventoryBackend
  info(): InfoResponse | Promise<InfoResponse>
  /** One page of a bulk read; undefined when the cursor is not one this server issued. */
  syncPage(
    table: SyncTableName,
    query: {cursor?: string; updatedSince: number; limit: number},
  ): SyncPage | undefined | Promise<SyncPage | undefined>
  deletions(query: {
    cursor?: string
    updatedSince: number
    limit: number
  }): SyncPage | undefined | Promise<SyncPage | undefined>
  /**
   * Applies a write at most once per idempotency key, atomically with recording its answer: the
   * same key and arguments again answer the recorded result; the same key with other arguments is
   * a conflict. A ToolFailure leaves nothing behind (a retry re-evaluates it).
   */
  writeOnce(tool: WriteToolName, args: ToolArgs<WriteToolName>, context: WriteContext): Promise<WriteOnceOutcome>
  close(): void | Promise<void>
}

export interface SyncPage {
  rows: unknown[]
  next_cursor: string | null
  watermark: number
  inventory_id: string
}

export type WriteOnceOutcome =
  | {kind: 'applied'; result: WriteResult}
  | {kind: 'replayed'; result: WriteResult}
  | {kind: 'conflict'; recordedTool: string}

/** A write recorded under its idempotency key in invagent_http_requests: what a retry is answered with. */
export interface RecordedRequest {
  tool: string
  /** SHA-256 of the canonical JSON of the tool and its arguments. */
  request_sha256: string
  /** The JSON of the write's result. */
  response: string
}

/** How a served inventory reads and adds rows of invagent_http_requests, inside the write's unit. */
export interface RequestRecords {
  /** The request recorded under the key, locked until the unit ends where the dialect can lock a row. */
  find(idempotencyKey: string): RecordedRequest | undefined | Promise<RecordedRequest | undefined>
  record(idempotencyKey: string, request: RecordedRequest): void | Promise<void>
}

/**
 * ServedInventory.writeOnce over any backend: in one unit, the recorded answer for a key seen
 * before (or a conflict when its arguments differ), or else the write applied with the meaning
 * src/tools/write-tools.ts gives it over this backend's primitives and its result recorded.
 */
export function writeOnceRecorded(
  backend: InventoryBackend,
  tool: WriteToolName,
  args: ToolArgs<WriteToolName>,
  context: WriteContext,
  records: RequestRecords,
): Promise<WriteOnceOutcome> {
  const digest = createHash('sha256').update(canonicalJson({tool, args})).digest('hex')
  return backend.unitOfWork(
    async (): Promise<WriteOnceOutcome> => {
      const prior = await records.find(context.idempotencyKey)
      if (prior) {
        return prior.request_sha256 === digest
          ? {kind: 'replayed', result: JSON.parse(prior.response) as WriteResult}
          : {kind: 'conflict', recordedTool: prior.tool}
      }
      const result = await applyWrite(backend, tool, args, context)
      await records.record(context.idempotencyKey, {tool, request_sha256: digest, response: JSON.stringify(result)})
      return {kind: 'applied', result}
    },
    () => true,
  )
}

const REQUESTS_TABLE_SQL = `
CREATE TABLE IF NOT EXISTS invagent_http_requests (
  idempotency_key TEXT PRIMARY KEY,
  tool TEXT NOT NULL,
  request_sha256 TEXT NOT NULL,
  response TEXT NOT NULL,
  at INTEGER NOT NULL
);`

/** The reference inventory file, served: change tracking and the request log live in the same file. */
export class ServedSqliteInventory implements ServedInventory {
  readonly backend: SqliteInventory

  private constructor(backend: SqliteInventory) {
    this.backend = backend
  }

  /** Opens the file and adds what serving needs (change tracking, the request table) if it is missing. */
  static open(path: string): ServedSqliteInventory {
    const backend = SqliteInventory.open(path)
    try {
      prepareChangeTracking(backend.db)
      backend.db.exec(REQUESTS_TABLE_SQL)
    } catch (error) {
      backend.close()
      throw error
    }
    return new ServedSqliteInventory(backend)
  }

  info(): InfoResponse {
    const frozen = this.backend.db.get(`SELECT 1 FROM invagent_meta WHERE key = 'clock'`) !== undefined
    return {
      inventory_id: inventoryId(this.backend.db),
      clock: this.backend.clock(),
      clock_frozen: frozen,
      watermark: currentWatermark(this.backend.db),
      contract: CONTRACT_VERSION,
    }
  }

  syncPage(table: SyncTableName, query: {cursor?: string; updatedSince: number; limit: number}): SyncPage | undefined {
    const spec = syncTable(table)
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor, spec)
    if (query.cursor !== undefined && !cursor) return undefined
    // The watermark is read before the rows: a change after it is read again next time, never lost.
    const watermark = currentWatermark(this.backend.db)
    const page = readSyncPage(this.backend.db, spec, {updatedSince: query.updatedSince, cursor, limit: query.limit})
    return {
      rows: page.rows,
      next_cursor: page.nextCursor ? encodeCursor(page.nextCursor) : null,
      watermark,
      inventory_id: inventoryId(this.backend.db),
    }
  }

  deletions(query: {cursor?: string; updatedSince: number; limit: number}): SyncPage | undefined {
    const from = query.cursor === undefined ? query.updatedSince : Number(query.cursor)
    if (!Number.isSafeInteger(from) || from < 0) return undefined
    const watermark = currentWatermark(this.backend.db)
    const page = readDeletions(this.backend.db, from, query.limit)
    return {
      rows: page.rows,
      next_cursor: page.nextCursor === null ? null : String(page.nextCursor),
      watermark,
      inventory_id: inventoryId(this.backend.db),
    }
  }

  writeOnce(tool: WriteToolName, args: ToolArgs<WriteToolName>, context: WriteContext): Promise<WriteOnceOutcome> {
    const db = this.backend.db
    return writeOnceRecorded(this.backend, tool, args, context, {
      find: (idempotencyKey) =>
        db.get<RecordedRequest>(
          'SELECT tool, request_sha256, response FROM invagent_http_requests WHERE idempotency_key = ?',
          idempotencyKey,
        ),
      record: (idempotencyKey, request) => {
        db.run(
          'INSERT INTO invagent_http_requests (idempotency_key, tool, request_sha256, response, at) ' +
            'VALUES (?, ?, ?, ?, ?)',
          idempotencyKey,
          request.tool,
          request.request_sha256,
          request.response,
          Date.now(),
        )
      },
    })
  }

  close(): void {
    this.backend.close()
  }
}
