import {DatabaseSync} from 'node:sqlite'

/*
 * The state an agent leaves behind, normalized so that two runs that did the same thing compare
 * equal. THE RULE (also in datasets/suites/README.md):
 *
 *  1. Compared: the inventory tables of the reference schema — parts, transactions,
 *     reservations, integration_events, sku_aliases, uom_conversions — every row by its primary
 *     key, every column by value.
 *  2. Excluded: invagent's own bookkeeping — the agent_actions table (idempotency keys, run ids,
 *     results, wall-clock times) and invagent_meta.
 *  3. Timestamps a write stamps with the time it ran are compared only as set or not set:
 *     transactions.posted_at (NULL until posted) is "set" or NULL; parts.updated_at is left out.
 *     Timestamps the data carries (created_at, at) are compared by value: no tool changes them.
 *
 * So a scenario's gold state (the gold fixes applied through the real backend) equals the state
 * an agent leaves exactly when the agent changed the same rows in the same way.
 */

export const COMPARED_TABLES = {
  parts: ['id'],
  transactions: ['id'],
  reservations: ['id'],
  integration_events: ['id'],
  sku_aliases: ['alias'],
  uom_conversions: ['part_id', 'uom'],
} as const satisfies Record<string, readonly string[]>

export type ComparedTable = keyof typeof COMPARED_TABLES
type Value = string | number | null
export type StateRow = Record<string, Value>

/** `table:key` → the normalized row. */
export type InventoryState = Map<string, StateRow>

export const SET_TIMESTAMP = '<set>'

function normalizeRow(table: ComparedTable, row: Record<string, unknown>): StateRow {
  const normalized: StateRow = {}
  for (const [column, value] of Object.entries(row)) {
    if (table === 'parts' && column === 'updated_at') continue
    if (table === 'transactions' && column === 'posted_at') {
      normalized[column] = value === null ? null : SET_TIMESTAMP
      continue
    }
    normalized[column] = typeof value === 'bigint' ? Number(value) : (value as Value)
  }
  return normalized
}

export function rowKey(table: string, key: string): string {
  return `${table}:${key}`
}

/** Reads the normalized state of an inventory database (read-only). */
export function readState(path: string): InventoryState {
  const db = new DatabaseSync(path, {readOnly: true})
  try {
    const state: InventoryState = new Map()
    for (const [table, keyColumns] of Object.entries(COMPARED_TABLES) as Array<[ComparedTable, readonly string[]]>) {
      for (const row of db.prepare(`SELECT * FROM ${table} ORDER BY ${keyColumns.join(', ')}`).all() as Array<
        Record<string, unknown>
      >) {
        state.set(rowKey(table, keyColumns.map((column) => String(row[column])).join('|')), normalizeRow(table, row))
      }
    }
    return state
  } finally {
    db.close()
  }
}

/** One row where two states differ: changed columns, or a row only one side has. */
export interface RowDifference {
  table: string
  key: string
  change: 'changed' | 'missing' | 'unexpected'
  /** For "changed": each differing column with the gold value and the value found. */
  columns: Array<{column: string; expected: Value; actual: Value}>
  /** The whole row for "missing" (gold) and "unexpected" (found). */
  row?: StateRow
}

function splitKey(stateKey: string): {table: string; key: string} {
  const colon = stateKey.indexOf(':')
  return {table: stateKey.slice(0, colon), key: stateKey.slice(colon + 1)}
}

/** Every row where `actual` differs from `expected`, in table then key order. */
export function diffStates(expected: InventoryState, actual: InventoryState): RowDifference[] {
  const differences: RowDifference[] = []
  for (const [stateKey, gold] of expected) {
    const found = actual.get(stateKey)
    if (!found) {
      differences.push({...splitKey(stateKey), change: 'missing', columns: [], row: gold})
      continue
    }
    const columns = [...new Set([...Object.keys(gold), ...Object.keys(found)])]
      .filter((column) => gold[column] !== found[column])
      .map((column) => ({column, expected: gold[column] ?? null, actual: found[column] ?? null}))
    if (columns.length > 0) differences.push({...splitKey(stateKey), change: 'changed', columns})
  }
  for (const [stateKey, found] of actual) {
    if (!expected.has(stateKey))
      differences.push({...splitKey(stateKey), change: 'unexpected', columns: [], row: found})
  }
  return differences
}

/** The keys (`table:key`) of rows that differ between two states. */
export function changedRows(before: InventoryState, after: InventoryState): string[] {
  return diffStates(before, after).map((difference) => rowKey(difference.table, difference.key))
}

/** One line per difference, as a reviewer reads it: `~ parts P-000012: on_hand expected 130, found 1210`. */
export function formatDifference(difference: RowDifference): string {
  const where = `${difference.table} ${difference.key}`
  if (difference.change === 'missing') return `- ${where}: missing (gold has ${JSON.stringify(difference.row)})`
  if (difference.change === 'unexpected') return `+ ${where}: unexpected row ${JSON.stringify(difference.row)}`
  return `~ ${where}: ${difference.columns.map((column) => `${column.column} expected ${JSON.stringify(column.expected)}, found ${JSON.stringify(column.actual)}`).join('; ')}`
}
