import {readFileSync} from 'node:fs'
import {resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {TRANSACTION_ROW_COLUMNS, transactionRowValues, type TransactionRow} from '../../src/inventory/backend.js'
import {SYNC_TABLES} from '../../src/inventory/http/change-tracking.js'
import {PG_TABLES} from '../../src/inventory/postgres/schema.js'
import {columnNames, REFERENCE_SCHEMA} from '../../src/inventory/schema-columns.js'
import {REQUIRED_COLUMNS} from '../../src/inventory/schema.js'

/** The README's "Reference inventory schema" table: each table's columns as written there, with their types. */
function readmeSchema(): Map<string, Array<{name: string; words: string}>> {
  const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8')
  const section = readme.split('## Reference inventory schema')[1]!.split('\n## ')[0]!
  const tables = new Map<string, Array<{name: string; words: string}>>()
  for (const line of section.split('\n')) {
    const row = /^\| `(\w+)` \| (.*) \|$/.exec(line)
    if (!row) continue
    // Items are separated by commas outside parentheses; an item that starts with a name is a column.
    const items: string[] = []
    let depth = 0
    let item = ''
    for (const character of row[2]!) {
      if (character === '(') depth++
      if (character === ')') depth--
      if (character === ',' && depth === 0) {
        items.push(item.trim())
        item = ''
      } else item += character
    }
    items.push(item.trim())
    const columns = items.flatMap((text) => {
      const column = /^`(\w+)`(.*)$/.exec(text)
      return column ? [{name: column[1]!, words: column[2]!}] : []
    })
    tables.set(row[1]!, columns)
  }
  return tables
}

describe('the reference schema description', () => {
  it('is what the README lists, table for table and column for column', () => {
    const readme = readmeSchema()
    expect([...readme.keys()]).toEqual(REFERENCE_SCHEMA.map((table) => table.name))
    for (const table of REFERENCE_SCHEMA) {
      const listed = readme.get(table.name)!
      expect(
        listed.map((column) => column.name),
        table.name,
      ).toEqual(table.columns.map((column) => column.name))
      for (const [index, column] of table.columns.entries()) {
        const words = listed[index]!.words.replace(/\(.*\)/g, '')
        // Where the README names a column's SQLite type or key, it is the one the DDL gives it.
        const type = /\b(TEXT|INTEGER)\b/.exec(words)?.[1]
        if (type) expect(type, `${table.name}.${column.name}`).toBe(column.type.sqlite)
        if (/\bPK\b/.test(words)) expect(table.primaryKey, `${table.name}.${column.name}`).toEqual([column.name])
        if (/\bUNIQUE\b/.test(words)) expect('unique' in column && column.unique, column.name).toBe(true)
        if (/\bNULL\b/.test(words)) expect('nullable' in column && column.nullable, column.name).toBe(true)
      }
    }
  })

  it('gives the required columns: every table but invagent_meta, every column', () => {
    expect(Object.keys(REQUIRED_COLUMNS)).toEqual([
      'parts',
      'transactions',
      'reservations',
      'integration_events',
      'sku_aliases',
      'uom_conversions',
      'agent_actions',
    ])
    expect(REQUIRED_COLUMNS.parts).toEqual([
      'id',
      'sku',
      'name',
      'uom',
      'on_hand',
      'reserved',
      'location',
      'updated_at',
    ])
    expect(REQUIRED_COLUMNS.uom_conversions).toEqual(['part_id', 'uom', 'factor'])
  })

  it('gives the synced tables their columns with the primary key first', () => {
    // Every reference table but the sync layer's events and invagent's own bookkeeping, in the DDL's order.
    const unsynced = ['integration_events', 'invagent_meta']
    expect(SYNC_TABLES.map((table) => table.name)).toEqual(
      REFERENCE_SCHEMA.map((table) => table.name).filter((name) => !unsynced.includes(name)),
    )
    for (const table of SYNC_TABLES) {
      expect(table.columns.slice(0, table.key.length), table.name).toEqual(table.key)
      expect(table.columns).toEqual([...columnNames(table.name)])
    }
    expect(SYNC_TABLES.find((table) => table.name === 'uom_conversions')!.key).toEqual(['part_id', 'uom'])
  })

  it("gives a transaction row's columns and values in the order of the DDL", () => {
    const row: TransactionRow = {
      id: 'T-1',
      part_id: null,
      sku: 'S-1',
      kind: 'receipt',
      qty: 3,
      uom: 'ea',
      status: 'posted',
      source: 'wms',
      external_ref: 'R-1',
      created_at: 10,
      posted_at: 11,
    }
    expect([...TRANSACTION_ROW_COLUMNS]).toEqual(Object.keys(row))
    expect(transactionRowValues(row)).toEqual(['T-1', null, 'S-1', 'receipt', 3, 'ea', 'posted', 'wms', 'R-1', 10, 11])
  })

  it('loads every table on PostgreSQL but agent_actions', () => {
    expect([...PG_TABLES].sort()).toEqual(
      REFERENCE_SCHEMA.map((table) => table.name)
        .filter((name) => name !== 'agent_actions')
        .sort(),
    )
  })
})
