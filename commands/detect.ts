import {Flags} from '@oclif/core'

import {InvagentCommand} from '../src/cli/base-command.js'
import {configFlag, inventoryFlag, selectInventory, sqliteDbFlag} from '../src/cli/inventory-flags.js'
import {renderFindings} from '../src/cli/render.js'
import {detectInventory} from '../src/detect/detect-inventory.js'
import {RULES} from '../src/tools/catalogue.js'
import type {DetectResult} from '../src/cli/output-schemas.js'

export default class Detect extends InvagentCommand {
  static override summary = 'Run every discrepancy rule as SQL and list the findings.'
  static override description =
    `Rules: ${RULES.join(', ')}. Read-only: the inventory is opened read-only (on PostgreSQL, one ` +
    'REPEATABLE READ snapshot).'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --db inventory.db --rule negative_on_hand --json',
    '<%= config.bin %> <%= command.id %> --inventory postgres://postgres@127.0.0.1/inventory --json',
  ]
  static override flags = {
    inventory: inventoryFlag,
    db: sqliteDbFlag,
    config: configFlag,
    rule: Flags.string({summary: 'Only these rules (repeatable).', multiple: true}),
  }

  async run(): Promise<DetectResult> {
    const {flags} = await this.parse(Detect)
    const {locator} = selectInventory(flags)
    const findings = await detectInventory(locator, flags.rule)
    this.say(renderFindings(findings))
    return {findings}
  }
}
