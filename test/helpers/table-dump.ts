import {DatabaseSync} from 'node:sqlite'

import {SYNC_TABLES} from '../../src/inventory/http/change-tracking.js'

/** Every row of the mirrored tables, reference columns only, in key order: to compare two inventories. */
export function dumpInventory(path: string): Record<string, unknown[]> {
  const db = new DatabaseSync(path, {readOnly: true})
  try {
    return Object.fromEntries(
      SYNC_TABLES.map((table) => [table.name, db.prepare(`SELECT ${table.columns.join(', ')} FROM ${table.name} ORDER BY ${table.key.join(', ')}`).all()]),
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
