import {dirname, join, resolve} from 'node:path'

import {localPathOf} from '../inventory/open-inventory.js'
import {SqliteStateStore} from './sqlite-state.js'
import type {StateStore} from './state-store.js'

/**
 * Where the state store lives when --state is not given: `state.db` beside a SQLite inventory
 * (`.invagent/state.db` for the default one), `.invagent/state.db` in the current folder for an
 * inventory that is not a local file.
 */
export function defaultStatePath(inventoryLocator: string): string {
  const path = localPathOf(inventoryLocator)
  return path === undefined ? join('.invagent', 'state.db') : join(dirname(resolve(path)), 'state.db')
}

/** Opens the state store a locator names (a SQLite path for now; docs/architecture.md, "State store"). */
export function openStateStore(locator: string): StateStore {
  const path = locator.startsWith('sqlite:') ? locator.slice('sqlite:'.length) : locator
  return SqliteStateStore.open(path)
}
