import {Flags} from '@oclif/core'

import {DEFAULT_DB, byFlag, currentUser, logDirectoryFor, stateFlag, statePathFor} from './base-command.js'
import {openStateStore} from '../state/open-state.js'
import type {StateStore} from '../state/state-store.js'

/** The flags every approvals and escalations command shares. */
export const queueFlags = {
  state: stateFlag,
  db: Flags.string({
    summary:
      'Inventory: locates the default state store; for approve, the inventory to apply to (default: the ' +
      'one the plan was made against).',
    env: 'INVAGENT_DB',
  }),
}

export const decisionFlags = {...queueFlags, by: byFlag}

/** Opens the state store the flags name; close it when done. */
export function stateFromFlags(flags: {state?: string; db?: string}): StateStore {
  return openStateStore(statePathFor(flags.state, flags.db ?? DEFAULT_DB))
}

export function deciderFromFlags(flags: {by?: string}): string {
  return flags.by ?? currentUser()
}

export {logDirectoryFor}
