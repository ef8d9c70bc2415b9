import {dirname, join, resolve} from 'node:path'

import {parseLocator} from '../inventory/locator.js'
import {localPathOf, type LocatorInput} from '../inventory/open-inventory.js'
import {SqliteStateStore} from './sqlite-state.js'
import type {StateStore} from './state-store.js'

/**
 * Where the state store lives when --state is not given (docs/architecture.md, "State store"):
 * `state.db` beside a SQLite inventory (`.invagent/state.db` for the default one), the same
 * database (schema `invagent`) for an inventory on PostgreSQL, and `.invagent/state.db` in the
 * current folder for an inventory over HTTP.
 */
export function defaultStateLocator(inventory: LocatorInput): string {
  const parsed = typeof inventory === 'string' ? parseLocator(inventory) : inventory
  if (parsed.kind === 'postgres') return parsed.url
  const path = localPathOf(parsed)
  return path === undefined ? join('.invagent', 'state.db') : join(dirname(resolve(path)), 'state.db')
}

/** Opens the state store a locator names: a SQLite path (or sqlite:PATH), or a postgres:// URL. */
export async function openStateStore(locator: string): Promise<StateStore> {
  if (/^postgres(ql)?:\/\//i.test(locator)) {
    const {PostgresStateStore} = await import('./postgres-state.js')
    return PostgresStateStore.open(locator)
  }
  const path = locator.startsWith('sqlite:') ? locator.slice('sqlite:'.length) : locator
  return SqliteStateStore.open(path)
}
