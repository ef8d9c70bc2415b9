import {RULES, type RuleName} from '../tools/catalogue.js'

export type Severity = 'high' | 'medium' | 'low'

/** A discrepancy found by a rule. `entity` is a part id or a transaction id, depending on the rule. */
export interface Finding {
  /** Stable across runs: `rule:entity`. */
  id: string
  rule: RuleName
  entity: string
  severity: Severity
  evidence: Record<string, string | number | boolean | null>
}

export function makeFinding(
  rule: RuleName,
  entity: string,
  severity: Severity,
  evidence: Finding['evidence'],
): Finding {
  return {id: `${rule}:${entity}`, rule, entity, severity, evidence}
}

const SEVERITY_ORDER: Record<Severity, number> = {high: 0, medium: 1, low: 2}

/**
 * Most severe first, then in the order of the rules (part-level rules before the transaction
 * rules they often explain), then by entity, so that audits are deterministic.
 */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
    RULES.indexOf(a.rule) - RULES.indexOf(b.rule) ||
    (a.entity < b.entity ? -1 : a.entity > b.entity ? 1 : 0)
  )
}
