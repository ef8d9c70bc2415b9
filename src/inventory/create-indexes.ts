import {INDEX_SQL} from './schema.js'
import {missingIndexes, openInventoryDatabase} from './sqlite-connection.js'

/**
 * Adds the indexes detection relies on to an inventory that lacks them (one created by another
 * tool), then refreshes the planner's statistics. Only indexes are added; no row changes.
 */
export function createIndexes(path: string): {db: string; created: string[]} {
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
