import {Flags} from '@oclif/core'

import {InvagentCommand, dbFlag} from '../src/cli/base-command.js'
import {renderFindings} from '../src/cli/render.js'
import {detectInventory} from '../src/detect/detect-inventory.js'
import {RULES} from '../src/tools/catalogue.js'
import type {DetectResult} from '../src/cli/output-schemas.js'

export default class Detect extends InvagentCommand {
  static override summary = 'Run every discrepancy rule as SQL and list the findings.'
  static override description = `Rules: ${RULES.join(', ')}. Read-only: the database is opened read-only.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --db inventory.db --rule negative_on_hand --json',
  ]
  static override flags = {
    db: dbFlag,
    rule: Flags.string({summary: 'Only these rules (repeatable).', multiple: true}),
  }

  async run(): Promise<DetectResult> {
    const {flags} = await this.parse(Detect)
    const findings = await detectInventory(flags.db, flags.rule)
    this.say(renderFindings(findings))
    return {findings}
  }
}
