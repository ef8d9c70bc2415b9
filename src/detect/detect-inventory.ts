import {openInventory} from '../inventory/open-inventory.js'
import type {Finding} from './finding.js'
import {parseRuleNames} from './rules.js'

/** Opens the inventory read-only and runs the named rules (all when none). */
export async function detectInventory(db: string, ruleNames?: string[]): Promise<Finding[]> {
  const rules = parseRuleNames(ruleNames)
  const backend = openInventory(db, {readOnly: true})
  try {
    return await backend.detect(rules)
  } finally {
    backend.close()
  }
}
