import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {AuditLog} from '../../src/agent/audit-log.js'
import {runAudit, type AuditReport, type FindingOutcome} from '../../src/agent/audit.js'
import {DEFAULT_POLICY} from '../../src/agent/policy.js'
import type {Finding} from '../../src/detect/finding.js'
import {RulesEngine} from '../../src/engines/rules-engine.js'
import type {InventoryBackend} from '../../src/inventory/backend.js'
import {SYNC_TABLES} from '../../src/inventory/http/change-tracking.js'
import {HttpInventory} from '../../src/inventory/http/http-backend.js'
import {ServedPostgresInventory} from '../../src/inventory/http/served-postgres.js'
import {closeServer, createInventoryServer, listen} from '../../src/inventory/http/server.js'
import {PostgresInventory} from '../../src/inventory/postgres/backend.js'
import {initPostgresInventory} from '../../src/inventory/postgres/init.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {initInventory} from '../../src/simulate/generate.js'
import type {ToolArgs, WriteResult, WriteToolName} from '../../src/tools/tools.js'
import {applyWrite} from '../../src/tools/write-tools.js'
import {connect, startServer} from '../helpers/inventory-server.js'
import {createTestDatabase, postgresUnavailable} from '../helpers/postgres.js'
import {dumpInventory} from '../helpers/table-dump.js'

/*
 * The conformance suite of the backend contract (docs/architecture.md, "Backends"): one suite,
 * run against every backend (SQLite, PostgreSQL, and HTTP against the reference server over
 * SQLite and over PostgreSQL). From the same generated inventory each must give the same findings as the reference
 * (a SQLite file audited directly), the rules engine the same outcomes and the same final state;
 * a dry run must change nothing, and nothing may be applied twice. A new backend is done when it
 * passes: add it to SUBJECTS.
 */

const INVENTORY = {parts: 200, days: 30, faults: 26, seed: 42}
const RUN_ID = 'conformance'

const pgSkip = await postgresUnavailable()
if (pgSkip) console.warn(`SKIPPING the PostgreSQL conformance run: ${pgSkip}`)

type Dump = Record<string, unknown[]>

interface Opened {
  backend: InventoryBackend
  /** Every row of the reference tables, reference columns, in key order (agent_actions: key, finding, tool, args). */
  dump(): Promise<Dump>
  close(): Promise<void>
}

interface Subject {
  name: string
  skip?: string
  open(): Promise<Opened>
}

const directories: string[] = []
function directory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'invagent-conformance-'))
  directories.push(dir)
  return dir
}

function actionsOf(rows: Array<{idempotency_key: string; finding_id: string; tool: string; args: unknown}>) {
  return rows.map((row) => ({
    ...row,
    args: typeof row.args === 'string' ? JSON.parse(row.args) : row.args,
  }))
}

function sqliteDump(path: string): Dump {
  const dump = dumpInventory(path)
  const db = SqliteInventory.open(path, {readOnly: true})
  try {
    dump.agent_actions = actionsOf(
      db.db.all('SELECT idempotency_key, finding_id, tool, args FROM agent_actions ORDER BY idempotency_key'),
    )
  } finally {
    db.close()
  }
  return dump
}

async function postgresDump(url: string): Promise<Dump> {
  const client = new pg.Client({connectionString: url})
  await client.connect()
  client.setTypeParser(20, Number)
  try {
    const dump: Dump = {}
    for (const table of SYNC_TABLES) {
      if (table.name === 'agent_actions') continue
      const sql = `SELECT ${table.columns.join(', ')} FROM ${table.name} ORDER BY ${table.key.join(', ')}`
      dump[table.name] = (await client.query(sql)).rows
    }
    dump.agent_actions = actionsOf(
      (await client.query('SELECT idempotency_key, finding_id, tool, args FROM agent_actions ORDER BY idempotency_key'))
        .rows,
    )
    return dump
  } finally {
    await client.end()
  }
}

function sqliteFile(): string {
  return initInventory({...INVENTORY, path: join(directory(), 'inventory.db')}).db
}

const SUBJECTS: Subject[] = [
  {
    name: 'SQLite',
    async open() {
      const path = sqliteFile()
      const backend = SqliteInventory.open(path)
      return {backend, dump: async () => sqliteDump(path), close: async () => backend.close()}
    },
  },
  {
    name: 'PostgreSQL',
    skip: pgSkip,
    async open() {
      const database = await createTestDatabase('conformance')
      await initPostgresInventory({...INVENTORY, url: database.url})
      const backend = await PostgresInventory.open(database.url)
      return {
        backend,
        dump: () => postgresDump(database.url),
        async close() {
          await backend.close()
          await database.drop()
        },
      }
    },
  },
  {
    name: 'HTTP (reference server over SQLite)',
    async open() {
      const path = sqliteFile()
      const server = await startServer(path)
      const backend = await connect(server, directory())
      return {
        backend,
        dump: async () => sqliteDump(path),
        async close() {
          backend.close()
          await server.stop()
        },
      }
    },
  },
  {
    name: 'HTTP (reference server over PostgreSQL)',
    skip: pgSkip,
    async open() {
      const database = await createTestDatabase('conformance_http')
      await initPostgresInventory({...INVENTORY, url: database.url})
      const served = await ServedPostgresInventory.open(database.url)
      const server = createInventoryServer({inventory: served})
      const url = await listen(server, '127.0.0.1', 0)
      const backend = await HttpInventory.open({baseUrl: url, mirrorPath: join(directory(), 'mirror.db')})
      return {
        backend,
        dump: () => postgresDump(database.url),
        async close() {
          backend.close()
          await closeServer(server)
          await served.close()
          await database.drop()
        },
      }
    },
  },
]

/** What two backends must agree on: everything but timings. */
function comparable(report: AuditReport) {
  return {
    summary: {...report.summary},
    outcomes: report.outcomes.map((outcome: FindingOutcome) =>
      JSON.parse(JSON.stringify({...outcome, latencyMs: 0, holdMs: 0, holdWorkMs: 0})),
    ),
  }
}

async function audit(backend: InventoryBackend, dryRun: boolean): Promise<AuditReport> {
  const log = AuditLog.create(join(directory(), 'logs'), RUN_ID)
  try {
    return await runAudit({
      backend,
      engine: new RulesEngine(),
      log,
      dryRun,
      runId: RUN_ID,
      policy: DEFAULT_POLICY,
      approver: async () => true,
    })
  } finally {
    log.close()
  }
}

/** One write under a key, the way this backend takes writes (whole over HTTP, over primitives elsewhere). */
async function writeUnderKey(
  backend: InventoryBackend,
  tool: WriteToolName,
  args: ToolArgs<WriteToolName>,
  idempotencyKey: string,
): Promise<WriteResult> {
  const context = {runId: RUN_ID, findingId: 'conformance:write', idempotencyKey}
  if (backend.canRollBack === false) return backend.sendWrite!(tool, args, context)
  return applyWrite(backend, tool, args, context)
}

interface Reference {
  findings: Finding[]
  dryRun: ReturnType<typeof comparable>
  applied: ReturnType<typeof comparable>
  before: Dump
  after: Dump
  /** What detection still finds after the audit: what must be escalated. */
  left: Finding[]
}

let reference: Reference

beforeAll(async () => {
  const path = sqliteFile()
  const backend = SqliteInventory.open(path)
  try {
    const before = sqliteDump(path)
    const findings = await backend.detect()
    const dryRun = comparable(await audit(backend, true))
    const applied = comparable(await audit(backend, false))
    reference = {findings, dryRun, applied, before, after: sqliteDump(path), left: await backend.detect()}
  } finally {
    backend.close()
  }
  expect(reference.applied.summary.resolved).toBeGreaterThan(10)
})

afterAll(async () => {
  const {rmSync} = await import('node:fs')
  for (const dir of directories) rmSync(dir, {recursive: true, force: true})
})

describe.each(SUBJECTS)('backend conformance: $name', (subject) => {
  let opened: Opened
  beforeAll(async () => {
    if (!subject.skip) opened = await subject.open()
  })
  afterAll(async () => {
    await opened?.close()
  })

  it.skipIf(subject.skip !== undefined)('holds the same rows and finds the same findings', async () => {
    expect(await opened.dump()).toEqual(reference.before)
    expect(await opened.backend.detect()).toEqual(reference.findings)
  })

  it.skipIf(subject.skip !== undefined)('changes nothing in a dry run, with the same outcomes', async () => {
    const report = comparable(await audit(opened.backend, true))
    expect(report).toEqual(reference.dryRun)
    expect(await opened.dump()).toEqual(reference.before)
  })

  it.skipIf(subject.skip !== undefined)('applies the rules engine: the same outcomes and final state', async () => {
    const report = comparable(await audit(opened.backend, false))
    expect(report).toEqual(reference.applied)
    expect(await opened.dump()).toEqual(reference.after)
    expect(await opened.backend.detect()).toEqual(reference.left)
  })

  it.skipIf(subject.skip !== undefined)('applies nothing twice: a rerun, a write again under its key', async () => {
    const state = await opened.dump()
    const again = await audit(opened.backend, false)
    expect(again.summary.resolved).toBe(0)
    expect(await opened.dump()).toEqual(state)
    const [action] = state.agent_actions as Array<{idempotency_key: string; tool: WriteToolName; args: object}>
    expect(action).toBeDefined()
    const recorded = await opened.backend.findAction(action.idempotency_key)
    expect(recorded?.tool).toBe(action.tool)
    await writeUnderKey(opened.backend, action.tool, action.args as ToolArgs<WriteToolName>, action.idempotency_key)
    expect(await opened.dump()).toEqual(state)
  })
})
