import {UserError} from '../errors.js'
import {initInventory, type InitOptions, type InitResult} from '../simulate/generate.js'
import {describeLocator, type InventoryLocator} from './locator.js'
import {initPostgresInventory} from './postgres/init.js'

/**
 * Generates an inventory wherever the locator points: a SQLite file (ground truth beside it in
 * `<db>.faults.json`) or a PostgreSQL database (loaded with COPY; the ground truth is in the
 * result and in invagent_meta). The same seed gives the same rows on both.
 */
export async function initInventoryAt(
  locator: InventoryLocator,
  options: Omit<InitOptions, 'path'>,
): Promise<InitResult> {
  switch (locator.kind) {
    case 'sqlite':
      return initInventory({...options, path: locator.path})
    case 'postgres': {
      const {timings: _timings, ...result} = await initPostgresInventory({...options, url: locator.url})
      return result
    }
    case 'http':
      throw new UserError(
        `${describeLocator(locator)}: an inventory behind an HTTP API belongs to its own system; ` +
          'invagent cannot create one there',
      )
  }
}
