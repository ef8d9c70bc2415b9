import {RULES, type RuleName} from '../tools/catalogue.js'
import {UserError, didYouMean} from '../errors.js'
import {REGISTRY} from './registry.js'

export interface RuleInfo {
  name: RuleName
  entity: 'part' | 'transaction'
  description: string
}

/** Each rule's entity and description, from its entry in the registry (src/detect/registry.ts). */
export const RULE_INFO = Object.fromEntries(
  REGISTRY.map(({name, entity, description}) => [name, {name, entity, description}]),
) as Record<RuleName, RuleInfo>

/** Checks rule names given by a user, with a suggestion for typos. */
export function parseRuleNames(names: readonly string[] | undefined): RuleName[] | undefined {
  if (!names || names.length === 0) return undefined
  return names.map((name) => {
    if ((RULES as readonly string[]).includes(name)) return name as RuleName
    const suggestion = didYouMean(name, RULES)
    throw new UserError(`unknown rule "${name}"${suggestion ? ` — did you mean "${suggestion}"?` : ''}`, {
      suggestions: [`Known rules: ${RULES.join(', ')}`],
    })
  })
}
