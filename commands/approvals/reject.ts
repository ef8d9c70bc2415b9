import {Args, Flags} from '@oclif/core'
import type {z} from 'zod'

import {rejectPlan} from '../../src/agent/approvals.js'
import {InvagentCommand} from '../../src/cli/base-command.js'
import type {ApprovalsRejectOutput} from '../../src/cli/output-schemas.js'
import {decisionFlags, deciderFromFlags, logDirectoryFor, stateFromFlags} from '../../src/cli/state-flags.js'

export default class ApprovalsReject extends InvagentCommand {
  static override summary =
    'Reject a parked plan, with the reason (kept, queryable with `approvals list --status rejected`).'
  static override examples = [
    '<%= config.bin %> <%= command.id %> A-1f2e3d4c --reason "the shortage is real: counted on the shelf"',
  ]
  static override args = {
    id: Args.string({description: 'Approval id (from `invagent approvals list`).', required: true}),
  }
  static override flags = {
    ...decisionFlags,
    reason: Flags.string({summary: 'Why the plan is wrong, for the log and the dataset.', required: true}),
  }

  async run(): Promise<z.infer<typeof ApprovalsRejectOutput>> {
    const {args, flags} = await this.parse(ApprovalsReject)
    const state = await stateFromFlags(flags)
    try {
      const result = await rejectPlan(args.id, {
        state,
        by: deciderFromFlags(flags),
        reason: flags.reason,
        logDirectoryFor,
      })
      this.say(`${args.id}: rejected by ${result.approval.decidedBy}`)
      return result
    } finally {
      await state.close()
    }
  }
}
