import {Worker} from 'node:worker_threads'

import type {SqliteConnection} from '../inventory/sqlite-connection.js'
import {STOCK_DELTA_SQL, STUCK_PENDING_AFTER_MS} from '../inventory/schema.js'
import {RULES, type RuleName} from '../tools/catalogue.js'
import {compareFindings, makeFinding, type Finding} from './finding.js'

/*
 * Every rule of docs/architecture.md ("Rules") as SQL over the reference schema. The whole-inventory pass has two
 * halves that read different indexes and share nothing:
 *
 *  - the part pass walks the parts table and, for each part, its range of the ledger index
 *    (status, part_id, uom, qty): ledger balances and unconvertible units, plus the cheap rules
 *    on parts, reservations and transaction status;
 *  - the posting pass scans every posted transaction twice, by (source, external_ref) for
 *    duplicates and by part id for orphans.
 *
 * Each is about as long as the other, so on a large inventory the posting pass runs on a second,
 * read-only connection in a worker thread while the part pass runs here. The scoped pass answers
 * the same rules for a handful of entities (validation).
 */

/** The bare ledger aggregate: posted stock deltas per part. The benchmark baseline. */
export const LEDGER_GROUPS_SQL = `
  SELECT part_id, uom, SUM(qty) AS q, COUNT(*) AS n
  FROM transactions INDEXED BY idx_transactions_ledger
  WHERE status = 'posted'
  GROUP BY part_id, uom`

export const LEDGER_BALANCES_SQL = `
  SELECT g.part_id AS part_id, SUM(g.q * CASE WHEN g.uom = p.uom THEN 1 ELSE c.factor END) AS balance
  FROM (${LEDGER_GROUPS_SQL}) g
  JOIN parts p ON p.id = g.part_id
  LEFT JOIN uom_conversions c ON c.part_id = g.part_id AND c.uom = g.uom
  GROUP BY g.part_id`

/*
 * The factor of a posted row `t` of part `p`: STOCK_DELTA_SQL's, with the conversion looked up only
 * for rows not in the part's own unit. A join on uom_conversions would seek once per transaction;
 * most rows are in the part's unit and need no lookup.
 */
const FACTOR_SQL =
  'CASE WHEN t.uom = p.uom THEN 1 ELSE (SELECT c.factor FROM uom_conversions c WHERE c.part_id = p.id AND c.uom = t.uom) END'
const POSTED_OF_PART = `transactions t INDEXED BY idx_transactions_ledger WHERE t.status = 'posted' AND t.part_id = p.id`
const BALANCE_OF_PART_SQL = `SELECT COALESCE(SUM(t.qty * ${FACTOR_SQL}), 0) FROM ${POSTED_OF_PART}`
const UNCONVERTIBLE_OF_PART_SQL = `SELECT COALESCE(SUM((${FACTOR_SQL}) IS NULL), 0) FROM ${POSTED_OF_PART}`

/*
 * One seek per part into the ledger index, balance and unconvertible count from a single row-value
 * subquery, so the parts are read once and only the flagged ones come back: grouping all postings
 * first and joining the groups to parts takes about half as long again. The select list runs only for flagged
 * parts, where it splits the flag into its two causes; `<>` keeps the NULL semantics of comparing
 * on_hand with the balance directly.
 */
const PART_LEDGER_SQL = `
  SELECT p.id AS id, p.on_hand AS on_hand, (${BALANCE_OF_PART_SQL}) AS balance,
         p.on_hand <> (${BALANCE_OF_PART_SQL}) AS mismatch, (${UNCONVERTIBLE_OF_PART_SQL}) AS unconvertible
  FROM parts p
  WHERE (p.on_hand, 0) <> (SELECT COALESCE(SUM(t.qty * ${FACTOR_SQL}), 0), COALESCE(SUM((${FACTOR_SQL}) IS NULL), 0) FROM ${POSTED_OF_PART})`

const UNCONVERTIBLE_OF_PART_ROWS_SQL = `
  SELECT t.id AS id, t.uom AS uom, t.qty AS qty, p.uom AS part_uom
  FROM transactions t INDEXED BY idx_transactions_ledger JOIN parts p ON p.id = t.part_id
  WHERE t.status = 'posted' AND t.part_id = ? AND (${FACTOR_SQL}) IS NULL`

/** Posted part ids that name no part (NULL included): one group per id, then one lookup each. */
const ORPHAN_PARTS_SQL = `
  SELECT d.part_id AS part_id
  FROM (SELECT DISTINCT part_id FROM transactions INDEXED BY idx_transactions_ledger WHERE status = 'posted') d
  WHERE NOT EXISTS (SELECT 1 FROM parts WHERE parts.id = d.part_id)`

const ORPHANS_OF_PART_SQL = `
  SELECT id, part_id, sku FROM transactions WHERE status = 'posted' AND part_id IS ?`

const NEGATIVE_SQL = 'SELECT id, on_hand FROM parts WHERE on_hand < 0'

const RESERVATION_SQL = `
  SELECT p.id AS id, p.on_hand AS on_hand, p.reserved AS reserved, COALESCE(r.active, 0) AS active
  FROM parts p LEFT JOIN (
    SELECT part_id, SUM(qty) AS active FROM reservations INDEXED BY idx_reservations_active
    WHERE status = 'active' GROUP BY part_id) r ON r.part_id = p.id
  WHERE p.reserved <> COALESCE(r.active, 0) OR (p.reserved > 0 AND p.reserved > p.on_hand)`

const STATUS_SQL = `SELECT id, status, created_at, source FROM transactions WHERE status = ? AND created_at < ?`

const DUPLICATE_GROUPS_SQL = `
  SELECT source, external_ref FROM transactions INDEXED BY idx_transactions_posted_ref
  WHERE status = 'posted' GROUP BY source, external_ref HAVING COUNT(*) > 1`

const DUPLICATES_OF_REF_SQL = `
  SELECT id, created_at FROM transactions WHERE status = 'posted' AND source = ? AND external_ref = ? ORDER BY created_at, id`

type Evidence = Finding['evidence']

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

function statusFinding(
  rule: 'stuck_pending' | 'sync_error',
  row: {id: string; status: string; created_at: number; source: string},
  now: number,
): Finding {
  return makeFinding(rule, row.id, 'medium', {
    status: row.status,
    source: row.source,
    age_minutes: Math.floor((now - row.created_at) / 60000),
  })
}

/** The rules of the posting pass; every other rule belongs to the part pass. */
const POSTING_RULES: ReadonlySet<RuleName> = new Set(['duplicate_posting', 'orphan_transaction'])

/** Below this many transactions a worker thread costs more to start than it saves. */
const CONCURRENT_MIN_TRANSACTIONS = 200_000

/** All rules (or the named ones) over the whole inventory. */
export async function detectAll(
  db: SqliteConnection,
  now: number,
  rules: readonly RuleName[] = RULES,
): Promise<Finding[]> {
  const wanted = new Set(rules)
  const postingRules = [...wanted].filter((rule) => POSTING_RULES.has(rule))
  // The worker starts first so that it runs while this thread is busy with the part pass.
  const concurrent =
    postingRules.length > 0 && postingRules.length < wanted.size && canReadConcurrently(db)
      ? postingPassInWorker(db.path, postingRules)
      : undefined
  const findings = partPass(db, now, wanted)
  findings.push(...((await concurrent) ?? postingPass(db, new Set(postingRules))))
  return findings.sort(compareFindings)
}

/**
 * A second connection sees only committed data, so it may stand in for this one only outside a
 * transaction (unknown on Node versions without `isTransaction`), on a file, and when the
 * inventory is large enough to be worth it.
 */
function canReadConcurrently(db: SqliteConnection): boolean {
  if (db.db.isTransaction !== false || db.path === '' || db.path === ':memory:' || db.path.startsWith('file:'))
    return false
  return db.get<{n: number}>('SELECT count(*) AS n FROM transactions')!.n >= CONCURRENT_MIN_TRANSACTIONS
}

/** Resolves to undefined when the worker cannot do the job, so that the caller runs it itself. */
function postingPassInWorker(path: string, rules: RuleName[]): Promise<Finding[] | undefined> {
  return new Promise((resolve) => {
    let worker: Worker
    try {
      worker = new Worker(new URL('./detect-worker.js', import.meta.url), {workerData: {path, rules}})
    } catch {
      resolve(undefined)
      return
    }
    worker.once('message', (findings: Finding[]) => resolve(findings))
    worker.once('error', () => resolve(undefined))
    worker.once('exit', () => resolve(undefined))
  })
}

function partPass(db: SqliteConnection, now: number, wanted: ReadonlySet<RuleName>): Finding[] {
  const findings: Finding[] = []
  if (wanted.has('negative_on_hand')) {
    for (const row of db.all<{id: string; on_hand: number}>(NEGATIVE_SQL)) {
      findings.push(makeFinding('negative_on_hand', row.id, 'high', {on_hand: row.on_hand}))
    }
  }
  if (wanted.has('ledger_mismatch') || wanted.has('uom_mismatch')) {
    for (const row of db.all<{
      id: string
      on_hand: number
      balance: number
      mismatch: number | null
      unconvertible: number
    }>(PART_LEDGER_SQL)) {
      if (row.mismatch && wanted.has('ledger_mismatch')) findings.push(ledgerFinding(row.id, row.on_hand, row.balance))
      if (row.unconvertible > 0 && wanted.has('uom_mismatch')) {
        for (const txn of db.all<{id: string; uom: string; qty: number; part_uom: string}>(
          UNCONVERTIBLE_OF_PART_ROWS_SQL,
          row.id,
        )) {
          findings.push(
            makeFinding('uom_mismatch', txn.id, 'medium', {uom: txn.uom, part_uom: txn.part_uom, qty: txn.qty}),
          )
        }
      }
    }
  }
  if (wanted.has('reservation_drift')) {
    for (const row of db.all<{id: string; on_hand: number; reserved: number; active: number}>(RESERVATION_SQL))
      findings.push(reservationFinding(row))
  }
  if (wanted.has('stuck_pending')) {
    for (const row of db.all<{id: string; status: string; created_at: number; source: string}>(
      STATUS_SQL,
      'pending',
      now - STUCK_PENDING_AFTER_MS,
    )) {
      findings.push(statusFinding('stuck_pending', row, now))
    }
  }
  if (wanted.has('sync_error')) {
    for (const row of db.all<{id: string; status: string; created_at: number; source: string}>(
      STATUS_SQL,
      'error',
      Number.MAX_SAFE_INTEGER,
    )) {
      findings.push(statusFinding('sync_error', row, now))
    }
  }
  return findings
}

/** Duplicates and orphans. Exported for the worker thread, which runs it on its own connection. */
export function postingPass(db: SqliteConnection, wanted: ReadonlySet<RuleName>): Finding[] {
  const findings: Finding[] = []
  if (wanted.has('orphan_transaction')) {
    for (const group of db.all<{part_id: string | null}>(ORPHAN_PARTS_SQL)) {
      for (const txn of db.all<{id: string; part_id: string | null; sku: string}>(ORPHANS_OF_PART_SQL, group.part_id)) {
        findings.push(makeFinding('orphan_transaction', txn.id, 'medium', {part_id: txn.part_id, sku: txn.sku}))
      }
    }
  }
  if (wanted.has('duplicate_posting')) {
    for (const group of db.all<{source: string; external_ref: string}>(DUPLICATE_GROUPS_SQL))
      findings.push(...duplicateFindings(db, group.source, group.external_ref))
  }
  return findings
}

function duplicateFindings(db: SqliteConnection, source: string, externalRef: string): Finding[] {
  const rows = db.all<{id: string; created_at: number}>(DUPLICATES_OF_REF_SQL, source, externalRef)
  return rows
    .slice(1)
    .map((row) =>
      makeFinding('duplicate_posting', row.id, 'high', {
        source,
        external_ref: externalRef,
        first_posting: rows[0].id,
        postings: rows.length,
      }),
    )
}

/** The same rules, answered only for the given parts and transactions. */
export function detectForEntities(
  db: SqliteConnection,
  now: number,
  partIds: Iterable<string>,
  txnIds: Iterable<string>,
): Finding[] {
  const findings: Finding[] = []
  for (const partId of partIds) {
    const part = db.get<{id: string; on_hand: number; reserved: number}>(
      'SELECT id, on_hand, reserved FROM parts WHERE id = ?',
      partId,
    )
    if (!part) continue
    if (part.on_hand < 0) findings.push(makeFinding('negative_on_hand', part.id, 'high', {on_hand: part.on_hand}))
    const balance = ledgerBalanceOf(db, part.id)
    if (balance !== part.on_hand) findings.push(ledgerFinding(part.id, part.on_hand, balance))
    const active = db.get<{active: number}>(
      `SELECT COALESCE(SUM(qty), 0) AS active FROM reservations WHERE part_id = ? AND status = 'active'`,
      part.id,
    )!.active
    if (active !== part.reserved || (part.reserved > 0 && part.reserved > part.on_hand))
      findings.push(reservationFinding({...part, active}))
  }
  const seenDuplicates = new Set<string>()
  for (const txnId of txnIds) {
    const txn = db.get<{
      id: string
      part_id: string | null
      sku: string
      uom: string
      qty: number
      status: string
      source: string
      external_ref: string
      created_at: number
      part_exists: number
      part_uom: string | null
      factor: number | null
    }>(
      `SELECT t.id, t.part_id, t.sku, t.uom, t.qty, t.status, t.source, t.external_ref, t.created_at, p.id IS NOT NULL AS part_exists, p.uom AS part_uom, c.factor
       FROM transactions t LEFT JOIN parts p ON p.id = t.part_id LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom WHERE t.id = ?`,
      txnId,
    )
    if (!txn) continue
    if (txn.status === 'pending' && txn.created_at < now - STUCK_PENDING_AFTER_MS)
      findings.push(statusFinding('stuck_pending', txn, now))
    if (txn.status === 'error') findings.push(statusFinding('sync_error', txn, now))
    if (txn.status !== 'posted') continue
    if (!txn.part_exists)
      findings.push(makeFinding('orphan_transaction', txn.id, 'medium', {part_id: txn.part_id, sku: txn.sku}))
    else if (txn.uom !== txn.part_uom && txn.factor === null)
      findings.push(makeFinding('uom_mismatch', txn.id, 'medium', {uom: txn.uom, part_uom: txn.part_uom, qty: txn.qty}))
    const key = `${txn.source}\u0000${txn.external_ref}`
    if (!seenDuplicates.has(key)) {
      seenDuplicates.add(key)
      findings.push(...duplicateFindings(db, txn.source, txn.external_ref))
    }
  }
  return findings.sort(compareFindings)
}

export function ledgerBalanceOf(db: SqliteConnection, partId: string): number {
  return db.get<{balance: number}>(
    `SELECT COALESCE(SUM(${STOCK_DELTA_SQL}), 0) AS balance FROM transactions t JOIN parts p ON p.id = t.part_id
     LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom WHERE t.part_id = ? AND t.status = 'posted'`,
    partId,
  )!.balance
}
