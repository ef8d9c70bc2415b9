import {Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {configFlag, inventoryFlag, selectInventory, sqliteDbFlag} from '../../src/cli/inventory-flags.js'
import {renderTable} from '../../src/cli/table.js'
import {DEMO_INVENTORY} from '../../src/inventory/demo.js'
import {initInventoryAt} from '../../src/inventory/init-at-locator.js'
import type {InventoryInitResult} from '../../src/cli/output-schemas.js'

export default class InventoryInit extends InvagentCommand {
  static override summary = 'Generate a realistic inventory with injected faults and their ground truth.'
  static override description =
    'Parts with SKUs, units and pack conversions; receipts, issues, transfers, returns and ' +
    'adjustments over --days; reservations; free-text integration events. --faults injects that many ' +
    'faults, cycling through every rule and root cause (escalation cases included); the ground truth ' +
    'is written next to a SQLite database as <db>.faults.json, and into invagent_meta on PostgreSQL ' +
    '(where the rows are loaded with COPY). The same --seed gives the same inventory.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --db /tmp/big.db --parts 5000 --days 90 --faults 100 --seed 7 --json',
    '<%= config.bin %> <%= command.id %> --inventory postgres://postgres@127.0.0.1/inventory --parts 100000 --force',
  ]
  static override flags = {
    inventory: inventoryFlag,
    db: sqliteDbFlag,
    config: configFlag,
    parts: Flags.integer({summary: 'Number of parts.', default: DEMO_INVENTORY.parts, min: 1}),
    days: Flags.integer({summary: 'Days of transaction history.', default: DEMO_INVENTORY.days, min: 1}),
    faults: Flags.integer({
      summary: 'Faults to inject (at most half the parts).',
      default: DEMO_INVENTORY.faults,
      min: 0,
    }),
    seed: Flags.integer({summary: 'Random seed.', default: DEMO_INVENTORY.seed, min: 0}),
    force: Flags.boolean({
      summary: 'Replace an existing database (on PostgreSQL: its reference tables).',
      default: false,
    }),
  }

  async run(): Promise<InventoryInitResult> {
    const {flags} = await this.parse(InventoryInit)
    this.notice(
      `Generating ${flags.parts} parts over ${flags.days} days with ${flags.faults} faults (seed ${flags.seed})…`,
    )
    const started = Date.now()
    const progress = process.stderr.isTTY && !this.jsonEnabled()
    const {locator} = selectInventory(flags)
    const result = await initInventoryAt(locator, {
      parts: flags.parts,
      days: flags.days,
      faults: flags.faults,
      seed: flags.seed,
      force: flags.force,
      onProgress: progress
        ? (done, total) =>
            process.stderr.write(
              `\r  parts ${done}/${total} (${Math.round((100 * done) / total)}%, ` +
                `${((Date.now() - started) / 1000).toFixed(1)} s)${done === total ? '\n' : ''}`,
            )
        : undefined,
    })
    this.say(
      renderTable(
        ['fault', 'rule', 'root cause', 'entity', 'expected'],
        result.faults.map((fault) => [fault.id, fault.rule, fault.rootCause, fault.entity, fault.expected]),
      ),
    )
    const truth = locator.kind === 'sqlite' ? `${result.db}.faults.json` : 'invagent_meta'
    const counts = `${result.parts} parts, ${result.transactions} transactions, ${result.faults.length} faults`
    this.say(`\n${result.db}: ${counts} (ground truth in ${truth})`)
    return result
  }
}
