import type {Finding, Severity} from './finding.js'

/*
 * The shape of one entry of the rule registry (src/detect/registry.ts; docs/architecture.md, "Rules"): everything
 * about a detection rule in one place, its SQL for both dialects included. The detectors
 * (sqlite-detector.ts, postgres-detector.ts) are engines that run these entries.
 */

export type Evidence = Finding['evidence']

/** What a rule's mapping makes of a row; the engine adds the rule's name and severity. */
export interface FindingDraft {
  entity: string
  evidence: Evidence
}

/** What every query and mapping may use: the clock of the detection. */
export interface DetectionContext {
  now: number
}

export interface RootCauseDefinition {
  rootCause: string
  expected: 'fix' | 'escalate'
  /** One line for humans and for the model's system prompt. */
  description: string
}

/*
 * Rows are typed by each rule's own mapping. The members below are methods, so a mapping written for the
 * rule's own row type fits; `never` is the row type of an entry seen from outside, where only the engine
 * passes rows along.
 */

/** SQL run for the rows flagged by a query: once per element of `runs`, with those parameters. */
export interface FollowUp<Row = never> {
  sql: string
  runs(flagged: Row[]): unknown[][]
  /** The findings of the rows one run returned. */
  findings(rows: never[], context: DetectionContext): FindingDraft[]
}

/** From the rows of a query to findings: filter, then one finding per flagged row, and/or follow-up queries. */
export interface RowMapping<Row = never> {
  /** The rows that flag something (all rows when absent). */
  where?(row: Row, context: DetectionContext): boolean
  /** One finding per flagged row. */
  finding?(row: Row, context: DetectionContext): FindingDraft
  then?: readonly FollowUp<Row>[]
}

/** A rule's own whole-inventory query. */
export interface OwnQuery {
  sql: string
  params?(context: DetectionContext): unknown[]
  /**
   * The query may run on a second read-only connection at the same time as the others (a worker
   * thread on SQLite, a connection in the same snapshot on PostgreSQL).
   */
  secondConnection?: boolean
}

/** Whole-inventory detection: an own query, or a scan shared with other rules (src/detect/scans.ts). */
export interface WholeDetection<Scan extends string, Row = never> extends RowMapping<Row> {
  from: OwnQuery | {scan: Scan}
}

/**
 * Detection for given entities: the rows of the shared scoped scan of parts or transactions (src/detect/scans.ts),
 * with the extra columns the rule adds to it (name → SQL expression over the scan's aliases).
 */
export interface ScopedDetection<Row = never> extends RowMapping<Row> {
  of: 'part' | 'transaction'
  columns?: Readonly<Record<string, string>>
}

export interface DialectDetection<Scan extends string> {
  whole: WholeDetection<Scan>
  scoped: ScopedDetection
}

export type SqliteScanName = 'part_ledger'
export type PostgresScanName = 'ledger'

export interface RuleDefinition<Name extends string = string, Causes extends string = string> {
  name: Name
  entity: 'part' | 'transaction'
  severity: Severity | ((evidence: Evidence) => Severity)
  description: string
  rootCauses: readonly (RootCauseDefinition & {rootCause: Causes})[]
  sqlite: DialectDetection<SqliteScanName>
  postgres: DialectDetection<PostgresScanName>
}

/** Keeps the literal types of the name and the root causes, which RuleName and RootCause are made of. */
export function defineRule<const Name extends string, const Causes extends string>(
  rule: RuleDefinition<Name, Causes>,
): RuleDefinition<Name, Causes> {
  return rule
}

export function severityOf(rule: RuleDefinition, evidence: Evidence): Severity {
  return typeof rule.severity === 'function' ? rule.severity(evidence) : rule.severity
}
