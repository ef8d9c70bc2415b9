import {DatabaseSync} from 'node:sqlite'

import {SYNC_TABLES} from '../../src/inventory/http/change-tracking.js'

/**
 * Every row of the mirrored tables, reference columns only, in key order: to compare two inventories.
 * Without agent_actions unless asked: its times and run ids differ between two runs of one audit.
 */
export function dumpInventory(path: string, options: {actions?: boolean} = {}): Record<string, unknown[]> {
  const db = new DatabaseSync(path, {readOnly: true})
  try {
    return Object.fromEntries(
      SYNC_TABLES.filter((table) => options.actions || table.name !== 'agent_actions').map((table) => [
        table.name,
        db.prepare(`SELECT ${table.columns.join(', ')} FROM ${table.name} ORDER BY ${table.key.join(', ')}`).all(),
      ]),
    )
  } finally {
    db.close()
  }
}

export function countRows(path: string, sql: string, ...params: Array<string | number>): number {
  const db = new DatabaseSync(path, {readOnly: true})
  try {
    return Number((db.prepare(sql).get(...params) as {n: number}).n)
  } finally {
    db.close()
  }
}
