import type {InventoryLocator} from '../inventory/locator.js'
import {openInventory} from '../inventory/open-inventory.js'
import type {Finding} from './finding.js'
import {parseRuleNames} from './rules.js'

/** Opens the inventory read-only and runs the named rules (all when none). */
export async function detectInventory(locator: InventoryLocator, ruleNames?: string[]): Promise<Finding[]> {
  const rules = parseRuleNames(ruleNames)
  const backend = await openInventory(locator, {readOnly: true})
  try {
    return await backend.detect(rules)
  } finally {
    await backend.close()
  }
}
