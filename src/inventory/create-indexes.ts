import type {InventoryLocator} from './locator.js'
import {describeLocator} from './locator.js'
import {checkPostgresInventory, missingPostgresIndexes, PostgresConnection} from './postgres/connection.js'
import {PG_INDEX_SQL} from './postgres/schema.js'
import {INDEX_SQL} from './schema.js'
import {missingIndexes, openInventoryDatabase} from './sqlite-connection.js'

/**
 * Adds the indexes detection relies on to an inventory that lacks them (one created by another
 * tool), then refreshes the planner's statistics. Only indexes are added; no row changes.
 */
export async function createIndexes(locator: InventoryLocator): Promise<{db: string; created: string[]}> {
  if (locator.kind === 'postgres') return createPostgresIndexes(locator.url)
  if (locator.kind !== 'sqlite')
    throw new Error(`${describeLocator(locator)}: indexes are the inventory server's own business`)
  const path = locator.path
  const connection = openInventoryDatabase(path, {requireIndexes: false})
  try {
    const created = missingIndexes(connection)
    if (created.length > 0) {
      connection.exec(INDEX_SQL)
      connection.exec('ANALYZE')
    }
    return {db: path, created}
  } finally {
    connection.close()
  }
}

async function createPostgresIndexes(url: string): Promise<{db: string; created: string[]}> {
  const connection = await PostgresConnection.connect(url)
  try {
    await checkPostgresInventory(connection, {requireIndexes: false})
    const created = await missingPostgresIndexes(connection)
    if (created.length > 0) {
      await connection.exec(PG_INDEX_SQL)
      await connection.exec(
        'ANALYZE parts, transactions, reservations, integration_events, sku_aliases, uom_conversions',
      )
    }
    return {db: connection.display, created}
  } finally {
    await connection.close()
  }
}
