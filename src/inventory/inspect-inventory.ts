import {existsSync} from 'node:fs'

import type {InvagentError} from '../errors.js'
import {describeLocator, type InventoryLocator, type LocatorSource} from './locator.js'
import {probeHttpInventory} from './http/probe.js'
import {checkPostgresInventory, missingPostgresIndexes, PostgresConnection} from './postgres/connection.js'
import {missingIndexes, openInventoryDatabase} from './sqlite-connection.js'

/** What `doctor` says about the configured inventory: can it be reached, and what is it. */
export interface InventoryReport {
  kind: InventoryLocator['kind']
  /** The locator with credentials redacted. */
  locator: string
  source: LocatorSource
  reachable: boolean
  /** "SQLite 3.50.1", "PostgreSQL 15.20", … when reachable. */
  server: string | null
  parts: number | null
  transactions: number | null
  missingIndexes: string[]
  error?: string
  nextStep?: string
}

/** Opens the inventory read-only, checks its schema and counts its rows; never throws. */
export async function inspectInventory(locator: InventoryLocator, source: LocatorSource): Promise<InventoryReport> {
  const report: InventoryReport = {
    kind: locator.kind,
    locator: describeLocator(locator),
    source,
    reachable: false,
    server: null,
    parts: null,
    transactions: null,
    missingIndexes: [],
  }
  try {
    if (locator.kind === 'sqlite') {
      if (!existsSync(locator.path) && source === 'default') {
        return {
          ...report,
          error: 'no inventory yet',
          nextStep: '`invagent audit --dry-run` creates the demo inventory here.',
        }
      }
      const db = openInventoryDatabase(locator.path, {readOnly: true, requireIndexes: false})
      try {
        report.reachable = true
        report.server = `SQLite ${db.get<{v: string}>('SELECT sqlite_version() AS v')!.v}`
        report.parts = db.get<{n: number}>('SELECT count(*) AS n FROM parts')!.n
        report.transactions = db.get<{n: number}>('SELECT count(*) AS n FROM transactions')!.n
        report.missingIndexes = missingIndexes(db)
      } finally {
        db.close()
      }
    } else if (locator.kind === 'postgres') {
      const db = await PostgresConnection.connect(locator.url)
      try {
        report.reachable = true
        report.server = `PostgreSQL ${(await db.one<{v: string}>("SELECT current_setting('server_version') AS v"))!.v}`
        await checkPostgresInventory(db, {requireIndexes: false})
        report.parts = (await db.one<{n: number}>('SELECT count(*) AS n FROM parts'))!.n
        report.transactions = (await db.one<{n: number}>('SELECT count(*) AS n FROM transactions'))!.n
        report.missingIndexes = await missingPostgresIndexes(db)
      } finally {
        await db.close()
      }
    } else {
      const probe = await probeHttpInventory({url: locator.url})
      report.reachable = probe.reachable
      if (probe.contract !== null) report.server = `invagent REST contract ${probe.contract}`
      if (!probe.usable) {
        return {
          ...report,
          error: probe.problem ?? 'the inventory did not answer',
          nextStep: 'Check the URL, that the server runs (`invagent inventory serve`), and INVAGENT_TOKEN.',
        }
      }
    }
  } catch (error) {
    const suggestions = (error as InvagentError).suggestions
    return {...report, error: (error as Error).message, nextStep: suggestions?.[0]}
  }
  if (report.missingIndexes.length > 0) {
    const command = `invagent inventory indexes --inventory '${report.locator}'`
    report.nextStep = `Add the missing indexes with \`${command}\` (no row changes).`
  }
  return report
}
