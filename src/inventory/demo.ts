import {existsSync} from 'node:fs'
import {resolve} from 'node:path'

import {initInventory} from '../simulate/generate.js'

/** The embedded defaults: what `invagent audit --dry-run` audits on a fresh clone. */
export const DEMO_INVENTORY = {parts: 200, days: 30, faults: 26, seed: 42} as const

/**
 * Creates the demo inventory at the default path when nothing is there yet. Returns true when
 * it did; an explicitly given path that does not exist is an error for the caller to raise.
 */
export function ensureDemoInventory(path: string): boolean {
  if (existsSync(resolve(path))) return false
  initInventory({path, ...DEMO_INVENTORY})
  return true
}
