import {Args, Flags} from '@oclif/core'
import type {z} from 'zod'

import {approvePlan} from '../../src/agent/approvals.js'
import {InvagentCommand} from '../../src/cli/base-command.js'
import type {ApprovalsApproveOutput} from '../../src/cli/output-schemas.js'
import {
  decisionFlags,
  deciderFromFlags,
  inventoryFromFlags,
  logDirectoryFor,
  stateFromFlags,
} from '../../src/cli/state-flags.js'

export default class ApprovalsApprove extends InvagentCommand {
  static override summary = 'Approve a parked plan: re-check it against the inventory and apply it exactly once.'
  static override description =
    'The plan is applied in one short unit only when nothing it read has changed and its impact is the ' +
    'same; otherwise it is reported stale with what changed, and nothing is applied. Approving twice ' +
    'applies once. Exit code 1 when the plan is stale, expired or failed.'
  static override examples = ['<%= config.bin %> <%= command.id %> A-1f2e3d4c --reason "counted: the ledger is right"']
  static override args = {
    id: Args.string({description: 'Approval id (from `invagent approvals list`).', required: true}),
  }
  static override flags = {...decisionFlags, reason: Flags.string({summary: 'Why, for the log.'})}

  async run(): Promise<z.infer<typeof ApprovalsApproveOutput>> {
    const {args, flags} = await this.parse(ApprovalsApprove)
    const state = await stateFromFlags(flags)
    try {
      const result = await approvePlan(args.id, {
        state,
        by: deciderFromFlags(flags),
        reason: flags.reason,
        logDirectoryFor,
        inventory: inventoryFromFlags(flags),
      })
      const what =
        result.status === 'applied'
          ? result.appliedNow
            ? 'applied'
            : 'applied (already, earlier; nothing applied again)'
          : result.status
      this.say(`${args.id}: ${what}`)
      for (const change of result.changes) this.say(`  changed: ${change}`)
      for (const problem of result.problems) this.say(`  problem: ${problem}`)
      if (result.status !== 'applied') process.exitCode = 1
      return result
    } finally {
      await state.close()
    }
  }
}
