import {Worker} from 'node:worker_threads'

import type {SqliteConnection} from '../inventory/sqlite-connection.js'
import {STOCK_DELTA_SQL} from '../inventory/schema.js'
import {RULES, type RuleName} from '../tools/catalogue.js'
import {mapRows, planWhole, scopedQuery, secondConnectionRules, toFindings, type PlannedQuery} from './engine.js'
import {compareFindings, type Finding} from './finding.js'
import type {DetectionContext, RowMapping, RuleDefinition} from './rule-definition.js'

/*
 * The SQLite engine of the rule registry (docs/architecture.md, "Rules"): it runs each rule's SQLite
 * queries from src/detect/registry.ts. The whole-inventory pass has two halves that read different
 * indexes and share nothing:
 *
 *  - the queries on the first connection: the shared `part_ledger` scan walks the parts table and, for
 *    each part, its range of the ledger index (status, part_id, uom, qty): ledger balances and
 *    unconvertible units, plus the cheap rules on parts, reservations and transaction status;
 *  - the queries a rule marks `secondConnection`, which scan every posted transaction, by
 *    (source, external_ref) for duplicates and by part id for orphans.
 *
 * Each is about as long as the other, so on a large inventory the second half runs on a second,
 * read-only connection in a worker thread while the first runs here. The scoped pass answers
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

/** Below this many transactions a worker thread costs more to start than it saves. */
const CONCURRENT_MIN_TRANSACTIONS = 200_000

/** All rules (or the named ones) over the whole inventory. */
export async function detectAll(
  db: SqliteConnection,
  now: number,
  rules: readonly RuleName[] = RULES,
): Promise<Finding[]> {
  const queries = planWhole('sqlite', rules)
  const second = queries.filter((query) => query.secondConnection)
  const first = queries.filter((query) => !query.secondConnection)
  // The worker starts first so that it runs while this thread is busy with the first half.
  const concurrent =
    second.length > 0 && first.length > 0 && canReadConcurrently(db)
      ? inWorker(db.path, now, secondConnectionRules(second))
      : undefined
  const findings = runQueries(db, {now}, first)
  findings.push(...((await concurrent) ?? runQueries(db, {now}, second)))
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
function inWorker(path: string, now: number, rules: RuleName[]): Promise<Finding[] | undefined> {
  return new Promise((resolve) => {
    let worker: Worker
    try {
      worker = new Worker(new URL('./detect-worker.js', import.meta.url), {workerData: {path, now, rules}})
    } catch {
      resolve(undefined)
      return
    }
    worker.once('message', (findings: Finding[]) => resolve(findings))
    worker.once('error', () => resolve(undefined))
    worker.once('exit', () => resolve(undefined))
  })
}

/** The named rules' whole-inventory queries, all on this connection. Exported for the worker thread. */
export function detectOnConnection(db: SqliteConnection, now: number, rules: readonly RuleName[]): Finding[] {
  return runQueries(db, {now}, planWhole('sqlite', rules))
}

function runQueries(db: SqliteConnection, context: DetectionContext, queries: readonly PlannedQuery[]): Finding[] {
  const findings: Finding[] = []
  for (const query of queries) {
    const rows = db.all(query.sql, ...((query.params?.(context) ?? []) as never[]))
    for (const rule of query.rules) findings.push(...runMapping(db, rule, rule.sqlite.whole, rows, context))
  }
  return findings
}

function runMapping(
  db: SqliteConnection,
  rule: RuleDefinition,
  mapping: RowMapping,
  rows: readonly unknown[],
  context: DetectionContext,
): Finding[] {
  const {flagged, findings} = mapRows(rule, mapping, rows, context)
  for (const followUp of mapping.then ?? []) {
    for (const params of followUp.runs(flagged))
      findings.push(...toFindings(rule, followUp.findings(db.all(followUp.sql, ...(params as never[])), context)))
  }
  return findings
}

/** The same rules, answered only for the given parts and transactions. */
export function detectForEntities(
  db: SqliteConnection,
  now: number,
  partIds: Iterable<string>,
  txnIds: Iterable<string>,
): Finding[] {
  const findings: Finding[] = []
  for (const [of, ids] of [
    ['part', partIds],
    ['transaction', txnIds],
  ] as const) {
    const query = scopedQuery('sqlite', of)
    const rows: unknown[] = []
    for (const id of ids) {
      const row = db.get(query.sql, id)
      if (row) rows.push(row)
    }
    if (rows.length === 0) continue
    for (const rule of query.rules) findings.push(...runMapping(db, rule, rule.sqlite.scoped, rows, {now}))
  }
  return findings.sort(compareFindings)
}

export function ledgerBalanceOf(db: SqliteConnection, partId: string): number {
  return db.get<{balance: number}>(
    `SELECT COALESCE(SUM(${STOCK_DELTA_SQL}), 0) AS balance FROM transactions t JOIN parts p ON p.id = ` +
      `t.part_id
     LEFT JOIN uom_conversions c ON c.part_id = t.part_id AND c.uom = t.uom WHERE t.part_id ` +
      `= ? AND t.status = 'posted'`,
    partId,
  )!.balance
}
