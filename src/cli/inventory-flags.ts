import {Flags} from '@oclif/core'
import {dirname, join, resolve} from 'node:path'

import {loadConfig, type LoadedConfig} from '../config/load-config.js'
import {registerSecrets} from '../config/secrets.js'
import type {InventoryLocator} from '../inventory/locator.js'
import {resolveLocator, type ResolvedLocator} from '../inventory/resolve-locator.js'

export const inventoryFlag = Flags.string({
  summary: 'The inventory: a SQLite path or sqlite:PATH, postgres://USER@HOST/DB, or http(s)://….',
  description:
    'Also INVAGENT_INVENTORY, or `inventory:` in invagent.yaml. ' +
    'A flag wins over the environment, the environment over the ' +
    'config file; the default is .invagent/inventory.db. Credentials are never printed (passwords show as ***).',
  helpValue: 'LOCATOR',
})

/** `--db` as before, for SQLite files; no default here, so that the order of precedence can see it is unset. */
export const sqliteDbFlag = Flags.string({
  summary: 'Path of a SQLite inventory (the same as --inventory PATH).',
  description: 'INVAGENT_DB sets it from the environment. Defaults to .invagent/inventory.db.',
  helpValue: 'PATH',
})

export const configFlag = Flags.string({
  summary: 'Config file (default: invagent.yaml in the current folder, when there is one).',
  helpValue: 'FILE',
})

export interface InventorySelection extends ResolvedLocator {
  config: LoadedConfig | undefined
}

/** Reads the config file and works out which inventory the command's flags name. */
export function selectInventory(flags: {inventory?: string; db?: string; config?: string}): InventorySelection {
  const config = loadConfig({file: flags.config})
  if (config) registerSecrets(config.secrets)
  return {...resolveLocator({inventory: flags.inventory, db: flags.db, config}), config}
}

/** Audit logs live in a `logs` folder next to a SQLite inventory, and under .invagent/ for a server. */
export function logDirectoryForLocator(locator: InventoryLocator): string {
  return locator.kind === 'sqlite' ? join(dirname(resolve(locator.path)), 'logs') : resolve('.invagent', 'logs')
}
