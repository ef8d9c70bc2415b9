import type {PostgresConnection} from '../inventory/postgres/connection.js'
import {PG_STOCK_DELTA_SQL} from '../inventory/postgres/schema.js'
import {RULES, type RuleName} from '../tools/catalogue.js'
import {mapRows, planWhole, scopedQuery, toFindings, type PlannedQuery} from './engine.js'
import {compareFindings, type Finding} from './finding.js'
import type {DetectionContext, RowMapping, RuleDefinition} from './rule-definition.js'

/*
 * The PostgreSQL engine of the rule registry (docs/architecture.md, "Rules"): it runs each rule's
 * PostgreSQL queries from src/detect/registry.ts, giving exactly the findings of the SQLite engine on
 * the same data. The whole-inventory pass reads the posted ledger once (the shared `ledger` scan
 * serves the ledger, unit and orphan rules); duplicates come from the partial index on
 * (source, external_ref) of posted rows. The rows behind a flagged group (which transaction is
 * unconvertible, orphaned or duplicated) are fetched afterwards for the few groups flagged.
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
 * All rules (or the named ones) over the whole inventory. The caller runs it inside one
 * snapshot (REPEATABLE READ), so every rule sees the same state. With `helper`, a second
 * connection already inside the same snapshot (pg_export_snapshot), the queries the rules mark
 * `secondConnection` (the duplicate pass, then the reservation rule) run there, one after the
 * other, at the same time as the ledger pass here: the two read different indexes and are about
 * as long as each other, so on a server with two free cores detection takes about as long as the
 * ledger aggregate alone.
 */
export async function detectAllPostgres(
  db: PostgresConnection,
  now: number,
  rules: readonly RuleName[] = RULES,
  helper?: PostgresConnection,
): Promise<Finding[]> {
  const context = {now}
  const queries = planWhole('postgres', rules)
  const second = helper ? queries.filter((query) => query.secondConnection) : []
  const onHelper = second.length > 0 ? runQueries(helper!, context, second) : undefined
  // Awaited below; until then a failure must not surface as an unhandled rejection.
  onHelper?.catch(() => {})
  const findings = await runQueries(
    db,
    context,
    queries.filter((query) => !second.includes(query)),
  )
  if (onHelper) findings.push(...(await onHelper))
  return findings.sort(compareFindings)
}

async function runQueries(
  db: PostgresConnection,
  context: DetectionContext,
  queries: readonly PlannedQuery[],
): Promise<Finding[]> {
  const findings: Finding[] = []
  for (const query of queries) {
    const rows = await db.query(query.sql, query.params?.(context))
    for (const rule of query.rules) findings.push(...(await runMapping(db, rule, rule.postgres.whole, rows, context)))
  }
  return findings
}

async function runMapping(
  db: PostgresConnection,
  rule: RuleDefinition,
  mapping: RowMapping,
  rows: readonly unknown[],
  context: DetectionContext,
): Promise<Finding[]> {
  const {flagged, findings} = mapRows(rule, mapping, rows, context)
  for (const followUp of mapping.then ?? []) {
    for (const params of followUp.runs(flagged))
      findings.push(...toFindings(rule, followUp.findings((await db.query(followUp.sql, params)) as never[], context)))
  }
  return findings
}

/** The same rules, answered only for the given parts and transactions (validation, re-checks). */
export async function detectForEntitiesPostgres(
  db: PostgresConnection,
  now: number,
  partIds: Iterable<string>,
  txnIds: Iterable<string>,
): Promise<Finding[]> {
  const findings: Finding[] = []
  for (const [of, ids] of [
    ['part', [...partIds]],
    ['transaction', [...txnIds]],
  ] as const) {
    const query = scopedQuery('postgres', of)
    const rows = await db.query(query.sql, [ids])
    if (rows.length === 0) continue
    for (const rule of query.rules) findings.push(...(await runMapping(db, rule, rule.postgres.scoped, rows, {now})))
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
