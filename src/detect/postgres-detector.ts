import type {PostgresConnection} from '../inventory/postgres/connection.js'
import {PG_STOCK_DELTA_SQL} from '../inventory/postgres/schema.js'
import {STUCK_PENDING_AFTER_MS} from '../inventory/schema.js'
import {RULES, type RuleName} from '../tools/catalogue.js'
import {compareFindings, makeFinding, type Finding} from './finding.js'

/*
 * Every rule of docs/architecture.md ("Discrepancies") as PostgreSQL SQL, giving exactly the
 * findings of src/detect/sqlite-detector.ts on the same data. The whole-inventory pass reads the
 * posted ledger once: one aggregate per (part, unit) serves the ledger, unit and orphan rules;
 * duplicates come from the partial index on (source, external_ref) of posted rows. The rows
 * behind a flagged group (which transaction is unconvertible, orphaned or duplicated) are fetched
 * afterwards for the few groups flagged.
 */

/** The bare ledger aggregate: posted stock deltas per part. The benchmark baseline. */
export const PG_LEDGER_BALANCES_SQL = `
  SELECT g.part_id AS part_id, SUM(g.q * CASE WHEN g.uom = p.uom THEN 1 ELSE c.factor END) AS balance
  FROM (SELECT part_id, uom, SUM(qty) AS q, COUNT(*) AS n
        FROM transactions WHERE status = 'posted' GROUP BY part_id, uom) g
  JOIN parts p ON p.id = g.part_id
  LEFT JOIN uom_conversions c ON c.part_id = g.part_id AND c.uom = g.uom
  GROUP BY g.part_id`

/**
 * One pass over the posted ledger, shaped like the bare aggregate: the (part, unit) groups are
 * joined to the parts (a full join, so parts without postings and part ids that name no part
 * both appear) and their conversions, and grouped per part. Rows come back only for parts whose
 * cache differs from the ledger or that have postings in a unit without a conversion, and for
 * orphan part ids (`id` NULL; `orphan_part_id` NULL too when the transactions have no part id).
 */
const LEDGER_PASS_SQL = `
  SELECT p.id AS id, g.part_id AS orphan_part_id, p.on_hand AS on_hand,
         COALESCE(SUM(g.q * CASE WHEN g.uom = p.uom THEN 1 ELSE c.factor END), 0) AS balance,
         COALESCE(SUM(CASE WHEN g.uom = p.uom OR c.factor IS NOT NULL THEN 0 ELSE g.n END), 0) AS unconvertible
  FROM (SELECT part_id, uom, SUM(qty) AS q, COUNT(*) AS n
        FROM transactions WHERE status = 'posted' GROUP BY part_id, uom) g
  FULL JOIN parts p ON p.id = g.part_id
  LEFT JOIN uom_conversions c ON c.part_id = g.part_id AND c.uom = g.uom
  GROUP BY p.id, g.part_id
  HAVING p.id IS NULL
      OR p.on_hand <> COALESCE(SUM(g.q * CASE WHEN g.uom = p.uom THEN 1 ELSE c.factor END), 0)
      OR SUM(CASE WHEN g.uom = p.uom OR c.factor IS NOT NULL THEN 0 ELSE g.n END) > 0`

const UNCONVERTIBLE_ROWS_SQL = `
  SELECT t.id, t.uom, t.qty, p.uom AS part_uom
  FROM transactions t JOIN parts p ON p.id = t.part_id
  WHERE t.status = 'posted' AND t.part_id = ANY($1) AND t.uom <> p.uom
    AND NOT EXISTS (SELECT 1 FROM uom_conversions c WHERE c.part_id = t.part_id AND c.uom = t.uom)`

const ORPHAN_ROWS_SQL = `SELECT id, part_id, sku FROM transactions WHERE status = 'posted' AND part_id = ANY($1)`
const ORPHAN_ROWS_WITHOUT_PART_SQL = `
  SELECT id, part_id, sku FROM transactions WHERE status = 'posted' AND part_id IS NULL`

const NEGATIVE_SQL = 'SELECT id, on_hand FROM parts WHERE on_hand < 0'

const RESERVATION_SQL = `
  SELECT p.id, p.on_hand, p.reserved, COALESCE(r.active, 0) AS active
  FROM parts p LEFT JOIN (
    SELECT part_id, SUM(qty) AS active FROM reservations WHERE status = 'active' GROUP BY part_id) r ON r.part_id = p.id
  WHERE p.reserved <> COALESCE(r.active, 0) OR (p.reserved > 0 AND p.reserved > p.on_hand)`

const STATUS_SQL = 'SELECT id, status, created_at, source FROM transactions WHERE status = $1 AND created_at < $2'

/**
 * The (source, external_ref) keys posted more than once, from the partial index on posted rows.
 * Asked apart from the rows behind them: joined in one query, the planner expects a third of
 * all keys to be duplicated and scans the whole table again to join them.
 */
const DUPLICATE_GROUPS_SQL = `
  SELECT source, external_ref FROM transactions WHERE status = 'posted'
  GROUP BY source, external_ref HAVING COUNT(*) > 1`

const DUPLICATE_ROWS_OF_KEYS_SQL = `
  SELECT t.id, t.created_at, t.source, t.external_ref
  FROM transactions t JOIN unnest($1::text[], $2::text[]) AS k(source, external_ref)
    ON k.source = t.source AND k.external_ref = t.external_ref
  WHERE t.status = 'posted'
  ORDER BY t.source, t.external_ref, t.created_at, t.id`

type Evidence = Finding['evidence']
type StatusRow = {id: string; status: string; created_at: number; source: string}
type DuplicateRow = {id: string; created_at: number; source: string; external_ref: string}

function ledgerFinding(partId: string, onHand: number, balance: number): Finding {
  return makeFinding('ledger_mismatch', partId, 'medium', {
    on_hand: onHand,
    ledger_balance: balance,
    difference: onHand - balance,
  })
}

function reservationFinding(row: {id: string; on_hand: number; reserved: number; active: number}): Finding {
  const evidence: Evidence = {reserved: row.reserved, active_reserved: row.active, on_hand: row.on_hand}
  return makeFinding('reservation_drift', row.id, row.reserved > row.on_hand ? 'high' : 'medium', evidence)
}

function statusFinding(rule: 'stuck_pending' | 'sync_error', row: StatusRow, now: number): Finding {
  const evidence = {status: row.status, source: row.source, age_minutes: Math.floor((now - row.created_at) / 60000)}
  return makeFinding(rule, row.id, 'medium', evidence)
}

/** Groups rows ordered by (source, external_ref, created_at, id) into duplicate findings. */
function duplicateFindings(rows: DuplicateRow[]): Finding[] {
  const findings: Finding[] = []
  for (let start = 0; start < rows.length;) {
    let end = start + 1
    while (
      end < rows.length &&
      rows[end].source === rows[start].source &&
      rows[end].external_ref === rows[start].external_ref
    )
      end++
    const {source, external_ref: externalRef, id: first} = rows[start]
    for (let index = start + 1; index < end; index++) {
      const evidence = {source, external_ref: externalRef, first_posting: first, postings: end - start}
      findings.push(makeFinding('duplicate_posting', rows[index].id, 'high', evidence))
    }
    start = end
  }
  return findings
}

/**
 * All rules (or the named ones) over the whole inventory. The caller runs it inside one
 * snapshot (REPEATABLE READ), so every rule sees the same state. With `helper`, a second
 * connection already inside the same snapshot (pg_export_snapshot), the duplicate pass runs
 * there at the same time as the ledger pass here: the two read different indexes and are about
 * as long as each other, so on a server with two free cores detection takes about as long as the
 * ledger aggregate alone.
 */
export async function detectAllPostgres(
  db: PostgresConnection,
  now: number,
  rules: readonly RuleName[] = RULES,
  helper?: PostgresConnection,
): Promise<Finding[]> {
  const wanted = new Set(rules)
  const findings: Finding[] = []
  type ReservationRow = {id: string; on_hand: number; reserved: number; active: number}
  // On the helper, one after the other: the duplicate pass, then the reservation rule.
  const duplicates = wanted.has('duplicate_posting') && helper ? duplicateRows(helper) : undefined
  const reservations =
    wanted.has('reservation_drift') && helper ? helper.query<ReservationRow>(RESERVATION_SQL) : undefined
  // Awaited below; until then a failure must not surface as an unhandled rejection.
  duplicates?.catch(() => {})
  reservations?.catch(() => {})
  if (wanted.has('negative_on_hand')) {
    for (const row of await db.query<{id: string; on_hand: number}>(NEGATIVE_SQL)) {
      findings.push(makeFinding('negative_on_hand', row.id, 'high', {on_hand: row.on_hand}))
    }
  }
  if (wanted.has('ledger_mismatch') || wanted.has('uom_mismatch') || wanted.has('orphan_transaction')) {
    type LedgerRow = {
      id: string | null
      orphan_part_id: string | null
      on_hand: number
      balance: number
      unconvertible: number
    }
    const rows = await db.query<LedgerRow>(LEDGER_PASS_SQL)
    const unconvertibleParts: string[] = []
    const orphanIds: string[] = []
    let orphanNull = false
    for (const row of rows) {
      if (row.id === null) {
        if (row.orphan_part_id === null) orphanNull = true
        else orphanIds.push(row.orphan_part_id)
        continue
      }
      if (row.on_hand !== row.balance && wanted.has('ledger_mismatch'))
        findings.push(ledgerFinding(row.id, row.on_hand, row.balance))
      if (row.unconvertible > 0) unconvertibleParts.push(row.id)
    }
    if (wanted.has('uom_mismatch') && unconvertibleParts.length > 0) {
      for (const txn of await db.query<{id: string; uom: string; qty: number; part_uom: string}>(
        UNCONVERTIBLE_ROWS_SQL,
        [unconvertibleParts],
      )) {
        findings.push(
          makeFinding('uom_mismatch', txn.id, 'medium', {uom: txn.uom, part_uom: txn.part_uom, qty: txn.qty}),
        )
      }
    }
    if (wanted.has('orphan_transaction')) {
      type OrphanRow = {id: string; part_id: string | null; sku: string}
      const orphans = [
        ...(orphanIds.length > 0 ? await db.query<OrphanRow>(ORPHAN_ROWS_SQL, [orphanIds]) : []),
        ...(orphanNull ? await db.query<OrphanRow>(ORPHAN_ROWS_WITHOUT_PART_SQL) : []),
      ]
      for (const txn of orphans)
        findings.push(makeFinding('orphan_transaction', txn.id, 'medium', {part_id: txn.part_id, sku: txn.sku}))
    }
  }
  if (wanted.has('reservation_drift')) {
    for (const row of await (reservations ?? db.query<ReservationRow>(RESERVATION_SQL)))
      findings.push(reservationFinding(row))
  }
  if (wanted.has('stuck_pending')) {
    for (const row of await db.query<StatusRow>(STATUS_SQL, ['pending', now - STUCK_PENDING_AFTER_MS])) {
      findings.push(statusFinding('stuck_pending', row, now))
    }
  }
  if (wanted.has('sync_error')) {
    for (const row of await db.query<StatusRow>(STATUS_SQL, ['error', Number.MAX_SAFE_INTEGER]))
      findings.push(statusFinding('sync_error', row, now))
  }
  if (wanted.has('duplicate_posting')) findings.push(...duplicateFindings(await (duplicates ?? duplicateRows(db))))
  return findings.sort(compareFindings)
}

/** Every posted row of every key posted more than once, first posting first. */
async function duplicateRows(db: PostgresConnection): Promise<DuplicateRow[]> {
  const groups = await db.query<{source: string; external_ref: string}>(DUPLICATE_GROUPS_SQL)
  if (groups.length === 0) return []
  const sources = groups.map((group) => group.source)
  const refs = groups.map((group) => group.external_ref)
  return db.query<DuplicateRow>(DUPLICATE_ROWS_OF_KEYS_SQL, [sources, refs])
}

const SCOPED_PARTS_SQL = `
  SELECT p.id, p.on_hand, p.reserved,
    (SELECT COALESCE(SUM(${PG_STOCK_DELTA_SQL}), 0) FROM transactions t
       LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom
       WHERE t.part_id = p.id AND t.status = 'posted') AS balance,
    (SELECT COALESCE(SUM(qty), 0) FROM reservations r WHERE r.part_id = p.id AND r.status = 'active') AS active
  FROM parts p WHERE p.id = ANY($1)`

const SCOPED_TRANSACTIONS_SQL = `
  SELECT t.id, t.part_id, t.sku, t.uom, t.qty, t.status, t.source, t.external_ref, t.created_at,
         p.id IS NOT NULL AS part_exists, p.uom AS part_uom, c.factor
  FROM transactions t LEFT JOIN parts p ON p.id = t.part_id
  LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom
  WHERE t.id = ANY($1)`

type ScopedTransaction = StatusRow & {
  part_id: string | null
  sku: string
  uom: string
  qty: number
  external_ref: string
  part_exists: boolean
  part_uom: string | null
  factor: number | null
}

/** The same rules, answered only for the given parts and transactions (validation, re-checks). */
export async function detectForEntitiesPostgres(
  db: PostgresConnection,
  now: number,
  partIds: Iterable<string>,
  txnIds: Iterable<string>,
): Promise<Finding[]> {
  const findings: Finding[] = []
  type PartRow = {id: string; on_hand: number; reserved: number; balance: number; active: number}
  for (const part of await db.query<PartRow>(SCOPED_PARTS_SQL, [[...partIds]])) {
    if (part.on_hand < 0) findings.push(makeFinding('negative_on_hand', part.id, 'high', {on_hand: part.on_hand}))
    if (part.balance !== part.on_hand) findings.push(ledgerFinding(part.id, part.on_hand, part.balance))
    if (part.active !== part.reserved || (part.reserved > 0 && part.reserved > part.on_hand))
      findings.push(reservationFinding(part))
  }
  const keys = new Map<string, [string, string]>()
  for (const txn of await db.query<ScopedTransaction>(SCOPED_TRANSACTIONS_SQL, [[...txnIds]])) {
    if (txn.status === 'pending' && txn.created_at < now - STUCK_PENDING_AFTER_MS)
      findings.push(statusFinding('stuck_pending', txn, now))
    if (txn.status === 'error') findings.push(statusFinding('sync_error', txn, now))
    if (txn.status !== 'posted') continue
    if (!txn.part_exists)
      findings.push(makeFinding('orphan_transaction', txn.id, 'medium', {part_id: txn.part_id, sku: txn.sku}))
    else if (txn.uom !== txn.part_uom && txn.factor === null) {
      findings.push(makeFinding('uom_mismatch', txn.id, 'medium', {uom: txn.uom, part_uom: txn.part_uom, qty: txn.qty}))
    }
    keys.set(`${txn.source}\u0000${txn.external_ref}`, [txn.source, txn.external_ref])
  }
  if (keys.size > 0) {
    const sources = [...keys.values()].map(([source]) => source)
    const refs = [...keys.values()].map(([, ref]) => ref)
    findings.push(...duplicateFindings(await db.query<DuplicateRow>(DUPLICATE_ROWS_OF_KEYS_SQL, [sources, refs])))
  }
  return findings.sort(compareFindings)
}

/** A part's ledger balance: the sum of its posted stock deltas in its own unit. */
export async function ledgerBalanceOfPostgres(db: PostgresConnection, partId: string): Promise<number> {
  const row = await db.one<{balance: number}>(
    `SELECT COALESCE(SUM(${PG_STOCK_DELTA_SQL}), 0) AS balance FROM transactions t JOIN parts p ON p.id = t.part_id
     LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom
     WHERE t.part_id = $1 AND t.status = 'posted'`,
    [partId],
  )
  return row!.balance
}
