import {RULES, type RuleName} from '../tools/catalogue.js'
import {UserError, didYouMean} from '../errors.js'

export interface RuleInfo {
  name: RuleName
  entity: 'part' | 'transaction'
  description: string
}

export const RULE_INFO: Record<RuleName, RuleInfo> = {
  negative_on_hand: {name: 'negative_on_hand', entity: 'part', description: 'on_hand < 0'},
  ledger_mismatch: {
    name: 'ledger_mismatch',
    entity: 'part',
    description: 'on_hand differs from the sum of posted stock deltas',
  },
  stuck_pending: {name: 'stuck_pending', entity: 'transaction', description: 'pending for longer than 2 hours'},
  sync_error: {name: 'sync_error', entity: 'transaction', description: 'status = error'},
  duplicate_posting: {
    name: 'duplicate_posting',
    entity: 'transaction',
    description: 'a later posted transaction with the same (source, external_ref)',
  },
  orphan_transaction: {
    name: 'orphan_transaction',
    entity: 'transaction',
    description: 'a posted transaction whose part does not exist',
  },
  reservation_drift: {
    name: 'reservation_drift',
    entity: 'part',
    description: 'reserved differs from active reservations, or is positive and exceeds on_hand',
  },
  uom_mismatch: {
    name: 'uom_mismatch',
    entity: 'transaction',
    description: 'a posted transaction in a unit its part has no conversion for',
  },
}

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
