import type {LoadedConfig} from '../config/load-config.js'
import {UserError} from '../errors.js'
import {DEFAULT_SQLITE_PATH, parseLocator, type InventoryLocator, type LocatorSource} from './locator.js'

export interface ResolvedLocator {
  locator: InventoryLocator
  source: LocatorSource
}

/**
 * Which inventory a command works on. A flag wins over the environment, the environment over
 * the config file, the file over the default `.invagent/inventory.db`; `--inventory` and `--db`
 * together are refused rather than one silently ignored.
 */
export function resolveLocator(options: {
  inventory?: string
  db?: string
  config?: LoadedConfig
  env?: NodeJS.ProcessEnv
}): ResolvedLocator {
  const env = options.env ?? process.env
  if (options.inventory !== undefined && options.db !== undefined) {
    throw new UserError('--inventory and --db both name an inventory; give one', {
      code: 'LOCATOR_CONFLICT',
      suggestions: ['--db PATH is the same as --inventory PATH for a SQLite file.'],
    })
  }
  if (options.inventory !== undefined) return {locator: parseLocator(options.inventory), source: 'flag --inventory'}
  if (options.db !== undefined)
    return {locator: {kind: 'sqlite', path: parseSqlitePath(options.db)}, source: 'flag --db'}
  if (env.INVAGENT_INVENTORY) return {locator: parseLocator(env.INVAGENT_INVENTORY), source: 'env INVAGENT_INVENTORY'}
  if (env.INVAGENT_DB)
    return {locator: {kind: 'sqlite', path: parseSqlitePath(env.INVAGENT_DB)}, source: 'env INVAGENT_DB'}
  if (options.config?.config.inventory)
    return {locator: parseLocator(options.config.config.inventory), source: 'config'}
  return {locator: parseLocator(DEFAULT_SQLITE_PATH), source: 'default'}
}

/** `--db` takes a path; a URL there is almost certainly meant for --inventory. */
function parseSqlitePath(path: string): string {
  const locator = parseLocator(path)
  if (locator.kind !== 'sqlite') {
    throw new UserError('--db takes the path of a SQLite file; name other inventories with --inventory', {
      code: 'LOCATOR_DB_URL',
      suggestions: ['Use --inventory postgres://… (or INVAGENT_INVENTORY) for a PostgreSQL or HTTP inventory.'],
    })
  }
  return locator.path
}
