import {UserError} from '../errors.js'
import type {InventoryBackend} from './backend.js'
import {describeLocator, type InventoryLocator} from './locator.js'
import {PostgresInventory} from './postgres/backend.js'
import {SqliteInventory} from './sqlite-backend.js'

/** Opens the inventory a locator names: the one place that knows every backend. */
export async function openInventory(
  locator: InventoryLocator,
  options: {readOnly?: boolean} = {},
): Promise<InventoryBackend> {
  switch (locator.kind) {
    case 'sqlite':
      return SqliteInventory.open(locator.path, options)
    case 'postgres':
      return PostgresInventory.open(locator.url, options)
    case 'http':
      throw new UserError(`${describeLocator(locator)}: inventories over HTTP are not supported by this version`, {
        code: 'LOCATOR_UNSUPPORTED',
        suggestions: ['Name a SQLite file or a postgres:// database.'],
      })
  }
}
