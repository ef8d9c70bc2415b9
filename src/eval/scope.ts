import {DatabaseSync} from 'node:sqlite'

import {normalizeSku} from '../inventory/sql-reads.js'
import {rowKey, type InventoryState, type StateRow} from './state.js'

/*
 * What the findings of a scenario may change, worked out here from the database before the run
 * with SQL of its own — deliberately not with scopeOf (src/agent/scope.ts), which the policy gate uses:
 * the evaluator must not let the gate grade itself. A part finding may change its part and that
 * part's transactions and reservations. A transaction finding may change the transaction, its
 * part, the other transactions with its (source, external_ref), and the parts its SKU names
 * (exactly, through an alias, or ignoring case and punctuation). Rows a write adds (an
 * adjustment posting) may belong only to an allowed part. No row may disappear.
 */

export interface AllowedRows {
  rows: Set<string>
  parts: Set<string>
}

type Row = Record<string, unknown>

export function allowedRows(path: string, findings: ReadonlyArray<{rule: string; entity: string}>): AllowedRows {
  const db = new DatabaseSync(path, {readOnly: true})
  const allowed: AllowedRows = {rows: new Set(), parts: new Set()}
  const addPart = (partId: string, withHistory: boolean) => {
    allowed.parts.add(partId)
    allowed.rows.add(rowKey('parts', partId))
    if (!withHistory) return
    for (const row of db.prepare('SELECT id FROM transactions WHERE part_id = ?').all(partId) as Row[])
      allowed.rows.add(rowKey('transactions', String(row.id)))
    for (const row of db.prepare('SELECT id FROM reservations WHERE part_id = ?').all(partId) as Row[])
      allowed.rows.add(rowKey('reservations', String(row.id)))
  }
  try {
    const partsBySku = new Map<string, string[]>()
    for (const row of db.prepare('SELECT id, sku FROM parts').all() as Row[]) {
      const normalized = normalizeSku(String(row.sku))
      partsBySku.set(normalized, [...(partsBySku.get(normalized) ?? []), String(row.id)])
    }
    for (const finding of findings) {
      const txn = db
        .prepare('SELECT id, part_id, sku, source, external_ref FROM transactions WHERE id = ?')
        .get(finding.entity) as Row | undefined
      if (!txn) {
        addPart(finding.entity, true)
        continue
      }
      allowed.rows.add(rowKey('transactions', String(txn.id)))
      if (txn.part_id !== null && db.prepare('SELECT 1 FROM parts WHERE id = ?').get(txn.part_id as string))
        addPart(String(txn.part_id), false)
      for (const row of db
        .prepare('SELECT id FROM transactions WHERE source = ? AND external_ref = ?')
        .all(txn.source as string, txn.external_ref as string) as Row[]) {
        allowed.rows.add(rowKey('transactions', String(row.id)))
      }
      const sku = String(txn.sku)
      for (const row of db
        .prepare('SELECT id FROM parts WHERE sku = ? UNION SELECT part_id AS id FROM sku_aliases WHERE alias = ?')
        .all(sku, sku) as Row[])
        addPart(String(row.id), false)
      for (const partId of partsBySku.get(normalizeSku(sku)) ?? []) addPart(partId, false)
    }
    return allowed
  } finally {
    db.close()
  }
}

/** Rows changed, added or removed between `before` and `after` that no finding was allowed to touch. */
export function rowsOutsideScope(before: InventoryState, after: InventoryState, allowed: AllowedRows): string[] {
  const outside: string[] = []
  const ownedByAllowedPart = (table: string, row: StateRow) =>
    (table === 'transactions' || table === 'reservations') && allowed.parts.has(String(row.part_id))
  for (const [key, row] of after) {
    const previous = before.get(key)
    if (previous === undefined) {
      if (!ownedByAllowedPart(key.slice(0, key.indexOf(':')), row)) outside.push(key)
      continue
    }
    if (!allowed.rows.has(key) && JSON.stringify(previous) !== JSON.stringify(row)) outside.push(key)
  }
  for (const key of before.keys()) if (!after.has(key)) outside.push(key)
  return outside
}
