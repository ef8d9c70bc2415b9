import {REGISTRY} from '../detect/registry.js'

/**
 * The discrepancy catalogue of docs/architecture.md ("Rules"): every detection rule and the root causes that the
 * simulator injects, the playbook diagnoses and the model must tell apart, shared by the tool schema (the
 * `root_cause` enum), the simulator and the detectors. Made from the rule registry (src/detect/registry.ts),
 * where each rule is defined.
 */
type Registry = typeof REGISTRY
/** The names of a tuple of rules, as a tuple (a mapped type over a type parameter keeps tuples). */
type NamesOf<T extends readonly unknown[]> = {readonly [K in keyof T]: T[K] extends {name: infer Name} ? Name : never}

export const RULES = REGISTRY.map((rule) => rule.name) as unknown as NamesOf<Registry>
export type RuleName = (typeof RULES)[number]

export interface RootCauseInfo {
  rule: RuleName
  rootCause: string
  expected: 'fix' | 'escalate'
  /** One line for humans and for the model's system prompt. */
  description: string
}

export type RootCause = Registry[number]['rootCauses'][number]['rootCause']

/** Every root cause of every rule, in the order of the rules. */
export const ROOT_CAUSES: readonly (RootCauseInfo & {rootCause: RootCause})[] = REGISTRY.flatMap((rule) =>
  rule.rootCauses.map(({rootCause, expected, description}) => ({rule: rule.name, rootCause, expected, description})),
)

/** Every distinct root cause name, plus "unknown" for what cannot be diagnosed. */
export const ROOT_CAUSE_NAMES = [
  ...new Set<string>(ROOT_CAUSES.map((entry) => entry.rootCause)),
  'unknown',
] as unknown as [RootCause | 'unknown', ...Array<RootCause | 'unknown'>]

export function rootCausesOf(rule: RuleName): RootCauseInfo[] {
  return ROOT_CAUSES.filter((entry) => entry.rule === rule)
}
