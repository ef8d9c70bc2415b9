import {Flags} from '@oclif/core'

import {DEFAULT_DB, byFlag, currentUser, logDirectoryFor, stateFlag, statePathFor} from './base-command.js'
import {UserError} from '../errors.js'
import {openStateStore} from '../state/open-state.js'
import type {StateStore} from '../state/state-store.js'

/** The flags every approvals and escalations command shares. */
export const queueFlags = {
  state: stateFlag,
  inventory: Flags.string({
    summary:
      'Inventory locator: locates the default state store (on PostgreSQL, the same database); for approve, ' +
      'the inventory to apply to (default: the one the plan was made against).',
    env: 'INVAGENT_INVENTORY',
    helpValue: 'LOCATOR',
  }),
  db: Flags.string({
    summary: 'SQLite inventory path (the same as --inventory PATH).',
    env: 'INVAGENT_DB',
  }),
}

export const decisionFlags = {...queueFlags, by: byFlag}

/** The inventory the flags name, if any: --inventory or --db (not both). */
export function inventoryFromFlags(flags: {inventory?: string; db?: string}): string | undefined {
  if (flags.inventory !== undefined && flags.db !== undefined && flags.inventory !== flags.db) {
    throw new UserError('--inventory and --db both name an inventory; give one', {code: 'LOCATOR_CONFLICT'})
  }
  return flags.inventory ?? flags.db
}

/** Opens the state store the flags name; close it when done. */
export async function stateFromFlags(flags: {state?: string; inventory?: string; db?: string}): Promise<StateStore> {
  return openStateStore(statePathFor(flags.state, inventoryFromFlags(flags) ?? DEFAULT_DB))
}

export function deciderFromFlags(flags: {by?: string}): string {
  return flags.by ?? currentUser()
}

export {logDirectoryFor}
