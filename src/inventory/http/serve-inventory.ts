import {isIP} from 'node:net'

import type {z} from 'zod'

import type {InventoryServeOutput} from '../../cli/output-schemas.js'

import {UserError} from '../../errors.js'
import {closeServer, createInventoryServer, listen, type WriteLogEntry} from './server.js'
import {describeLocator, parseLocator} from '../locator.js'
import {ServedSqliteInventory, type ServedInventory} from './served-inventory.js'

export const DEFAULT_INVENTORY_PORT = 8765
export const DEFAULT_INVENTORY_HOST = '127.0.0.1'

/** Loopback names and addresses: the only binds allowed without a token. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '')
  if (bare === 'localhost') return true
  if (isIP(bare) === 4) return bare.startsWith('127.')
  if (isIP(bare) === 6) return bare === '::1'
  return false
}

export interface ServeInventoryOptions {
  inventory: string
  host: string
  port: number
  token?: string
  signal: AbortSignal
}

export interface ServeInventoryEvents {
  ready(line: InventoryServeReady): void
  write(entry: WriteLogEntry): void
}

type InventoryServeLine = z.infer<typeof InventoryServeOutput>
export type InventoryServeReady = Extract<InventoryServeLine, {event: 'ready'}>
export type InventoryServeStopped = Extract<InventoryServeLine, {event: 'stopped'}>

/**
 * Serves the REST contract over a SQLite inventory until the signal aborts. Refuses to listen
 * beyond loopback without a token: the contract can change stock.
 */
export async function serveInventoryUntilStopped(
  options: ServeInventoryOptions,
  events: ServeInventoryEvents,
): Promise<InventoryServeStopped> {
  if (!isLoopbackHost(options.host) && options.token === undefined) {
    throw new UserError(
      `refusing to serve the inventory on ${options.host} without a token: anyone who can reach it could change stock`,
      {
        suggestions: ['Pass --token-file FILE (or set INVAGENT_TOKEN), or bind to loopback (--host 127.0.0.1).'],
      },
    )
  }
  const inventory = await openServed(options.inventory)
  let writes = 0
  const server = createInventoryServer({
    inventory,
    token: options.token,
    logWrite: (entry) => {
      writes++
      events.write(entry)
    },
  })
  const started = Date.now()
  let url: string
  try {
    url = await listen(server, options.host, options.port)
  } catch (error) {
    await inventory.close()
    throw new UserError(`cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`, {
      cause: error,
      suggestions: ['Pick another --port (0 picks a free one).'],
    })
  }
  const port = Number(new URL(url).port)
  events.ready({
    event: 'ready',
    url,
    inventory: inventory.backend.location,
    host: options.host,
    port,
    auth: options.token === undefined ? 'none' : 'bearer',
  })
  await new Promise<void>((resolve) => {
    if (options.signal.aborted) resolve()
    else options.signal.addEventListener('abort', () => resolve(), {once: true})
  })
  await closeServer(server)
  await inventory.close()
  return {event: 'stopped', url, writes, uptimeMs: Date.now() - started}
}

/** Opens the inventory a locator names for serving: a SQLite file or a PostgreSQL database. */
async function openServed(locatorText: string): Promise<ServedInventory> {
  const locator = parseLocator(locatorText)
  if (locator.kind === 'sqlite') return ServedSqliteInventory.open(locator.path)
  if (locator.kind === 'postgres') {
    const {ServedPostgresInventory} = await import('./served-postgres.js')
    return ServedPostgresInventory.open(locator.url)
  }
  const named = describeLocator(locator)
  throw new UserError(`inventory serve cannot serve ${named}: it serves a SQLite file or a PostgreSQL database`, {
    code: 'SERVE_UNSUPPORTED',
    suggestions: ['Point invagent at that inventory directly (--inventory http(s)://…).'],
  })
}
