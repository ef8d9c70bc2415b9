import {InvagentCommand} from '../../src/cli/base-command.js'
import {configFlag, inventoryFlag, selectInventory, sqliteDbFlag} from '../../src/cli/inventory-flags.js'
import {createIndexes} from '../../src/inventory/create-indexes.js'
import type {InventoryIndexResult} from '../../src/cli/output-schemas.js'

export default class InventoryIndexes extends InvagentCommand {
  static override summary = "Add the indexes invagent's detection relies on to an existing inventory."
  static override description =
    'For a database built by another tool with the reference schema: creates the missing indexes and ' +
    'refreshes the planner statistics. Only indexes are added; no row changes. Does nothing when ' +
    'they all exist.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --db erp-export.db',
    '<%= config.bin %> <%= command.id %> --db erp-export.db --json',
    '<%= config.bin %> <%= command.id %> --inventory postgres://postgres@127.0.0.1/erp',
  ]
  static override flags = {inventory: inventoryFlag, db: sqliteDbFlag, config: configFlag}

  async run(): Promise<InventoryIndexResult> {
    const {flags} = await this.parse(InventoryIndexes)
    const result = await createIndexes(selectInventory(flags).locator)
    this.say(
      result.created.length > 0
        ? `Created ${result.created.length} index(es) in ${result.db}: ${result.created.join(', ')}`
        : `${result.db} already has every index.`,
    )
    return result
  }
}
