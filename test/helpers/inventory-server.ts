import {copyFileSync, mkdtempSync, rmSync} from 'node:fs'
import type {Server} from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {HttpInventory, type HttpInventoryOptions} from '../../src/inventory/http/http-backend.js'
import {
  closeServer,
  createInventoryServer,
  listen,
  type FaultHook,
  type WriteLogEntry,
} from '../../src/inventory/http/server.js'
import {ServedSqliteInventory} from '../../src/inventory/http/served-inventory.js'
import {initInventory} from '../../src/simulate/generate.js'

/*
 * The reference server in-process on a real loopback socket, over a real generated inventory,
 * with the test-only fault hook. `crash()` drops every connection and stops listening, as a
 * killed server would; `restart()` serves the same file on the same port again.
 */

const templates = new Map<string, string>()
const directories: string[] = []

/** A generated inventory (cached per parameters for the test file), copied to a fresh path. */
export function generatedInventory(
  params: {parts: number; faults: number; seed: number} = {parts: 200, faults: 26, seed: 42},
): {dir: string; path: string} {
  const key = JSON.stringify(params)
  let template = templates.get(key)
  if (!template) {
    const dir = mkdtempSync(join(tmpdir(), 'invagent-http-template-'))
    directories.push(dir)
    template = join(dir, 'inventory.db')
    initInventory({path: template, parts: params.parts, days: 30, faults: params.faults, seed: params.seed})
    templates.set(key, template)
  }
  const dir = mkdtempSync(join(tmpdir(), 'invagent-http-'))
  directories.push(dir)
  const path = join(dir, 'inventory.db')
  copyFileSync(template, path)
  return {dir, path}
}

export interface RunningServer {
  url: string
  port: number
  path: string
  writes: WriteLogEntry[]
  served: ServedSqliteInventory
  /** Replace to inject faults; undefined: none. */
  faults: FaultHook | undefined
  crash(): Promise<void>
  restart(): Promise<void>
  stop(): Promise<void>
}

export async function startServer(path: string, options: {token?: string; port?: number} = {}): Promise<RunningServer> {
  let served = ServedSqliteInventory.open(path)
  let server: Server
  const writes: WriteLogEntry[] = []
  const running: RunningServer = {
    url: '',
    port: 0,
    path,
    writes,
    served,
    faults: undefined,
    async crash() {
      server.closeAllConnections()
      await closeServer(server)
      served.close()
    },
    async restart() {
      served = ServedSqliteInventory.open(path)
      running.served = served
      await serve(running.port)
    },
    async stop() {
      if (server.listening) await running.crash()
    },
  }
  const serve = async (port: number) => {
    server = createInventoryServer({
      inventory: served,
      token: options.token,
      logWrite: (entry) => writes.push(entry),
      faults: (request) => running.faults?.(request),
    })
    running.url = await listen(server, '127.0.0.1', port)
    running.port = Number(new URL(running.url).port)
  }
  await serve(options.port ?? 0)
  return running
}

/** An HTTP backend with quick retries, so that fault tests take milliseconds, not seconds. */
export async function connect(
  server: RunningServer,
  dir: string,
  options: Partial<HttpInventoryOptions> = {},
): Promise<HttpInventory> {
  return HttpInventory.open({
    baseUrl: server.url,
    mirrorPath: join(dir, 'mirror', 'mirror.db'),
    baseDelayMs: 10,
    maxDelayMs: 50,
    timeoutMs: 2000,
    ...options,
  })
}

export function removeTemporaryInventories(): void {
  for (const dir of directories.splice(0)) rmSync(dir, {recursive: true, force: true})
  templates.clear()
}
