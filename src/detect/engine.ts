import type {RuleName} from '../tools/catalogue.js'
import {makeFinding, type Finding} from './finding.js'
import {REGISTRY} from './registry.js'
import {
  severityOf,
  type DetectionContext,
  type FindingDraft,
  type OwnQuery,
  type RowMapping,
  type RuleDefinition,
} from './rule-definition.js'
import {POSTGRES_SCANS, SCOPED_FROM, SCOPED_PART_COLUMNS, SCOPED_TRANSACTION_COLUMNS, SQLITE_SCANS} from './scans.js'

/*
 * What both detectors do with the registry (docs/architecture.md, "Rules"), apart from running SQL: which
 * queries a detection runs, and what becomes of their rows. The detectors only execute.
 */

export type Dialect = 'sqlite' | 'postgres'

/** One query of a whole-inventory detection and the rules its rows answer. */
export interface PlannedQuery {
  sql: string
  params?: OwnQuery['params']
  secondConnection: boolean
  rules: RuleDefinition[]
}

/** The queries that answer the given rules: a rule's own query, or a shared scan once for all its rules. */
export function planWhole(dialect: Dialect, names: Iterable<RuleName>): PlannedQuery[] {
  const wanted = new Set<string>(names)
  const queries = new Map<string, PlannedQuery>()
  for (const rule of REGISTRY) {
    if (!wanted.has(rule.name)) continue
    const from = rule[dialect].whole.from
    if ('scan' in from) {
      const scans: Readonly<Record<string, string>> = dialect === 'sqlite' ? SQLITE_SCANS : POSTGRES_SCANS
      const key = `scan:${from.scan}`
      const query = queries.get(key) ?? {sql: scans[from.scan], secondConnection: false, rules: []}
      query.rules.push(rule)
      queries.set(key, query)
    } else {
      queries.set(`rule:${rule.name}`, {
        sql: from.sql,
        params: from.params,
        secondConnection: from.secondConnection === true,
        rules: [rule],
      })
    }
  }
  return [...queries.values()]
}

/** The whole-inventory rule names answered by queries that may run on a second connection. */
export function secondConnectionRules(queries: readonly PlannedQuery[]): RuleName[] {
  return queries.filter((query) => query.secondConnection).flatMap((query) => query.rules.map(ruleName))
}

function ruleName(rule: RuleDefinition): RuleName {
  return rule.name as RuleName
}

export function toFindings(rule: RuleDefinition, drafts: readonly FindingDraft[]): Finding[] {
  return drafts.map((draft) =>
    makeFinding(ruleName(rule), draft.entity, severityOf(rule, draft.evidence), draft.evidence),
  )
}

/** The rows a mapping flags and the findings it makes of them directly; its follow-ups are the caller's to run. */
export function mapRows(
  rule: RuleDefinition,
  mapping: RowMapping,
  rows: readonly unknown[],
  context: DetectionContext,
): {flagged: never[]; findings: Finding[]} {
  const all = rows as never[]
  const flagged = mapping.where ? all.filter((row) => mapping.where!(row, context)) : all
  const findings = mapping.finding
    ? toFindings(
        rule,
        flagged.map((row) => mapping.finding!(row, context)),
      )
    : []
  return {flagged, findings}
}

/** A scoped scan with every column the rules add, and the rules that read it. */
export interface ScopedQuery {
  sql: string
  rules: RuleDefinition[]
}

const scopedQueries = new Map<string, ScopedQuery>()

export function scopedQuery(dialect: Dialect, of: 'part' | 'transaction'): ScopedQuery {
  const key = `${dialect}:${of}`
  let query = scopedQueries.get(key)
  if (!query) {
    const rules = REGISTRY.filter((rule) => rule[dialect].scoped.of === of)
    const columns = new Map<string, string>()
    for (const rule of rules) {
      for (const [name, sql] of Object.entries(rule[dialect].scoped.columns ?? {})) {
        if (columns.has(name) && columns.get(name) !== sql)
          throw new Error(`rule ${rule.name} redefines the scoped ${of} column "${name}" (${dialect})`)
        columns.set(name, sql)
      }
    }
    const base = of === 'part' ? SCOPED_PART_COLUMNS : SCOPED_TRANSACTION_COLUMNS
    const select = [...base, ...[...columns].map(([name, sql]) => `${sql} AS ${name}`)].join(', ')
    query = {sql: `SELECT ${select} ${SCOPED_FROM[dialect][of]}`, rules}
    scopedQueries.set(key, query)
  }
  return query
}
