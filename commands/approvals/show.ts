import {Args} from '@oclif/core'
import type {z} from 'zod'

import {showApproval} from '../../src/agent/approvals.js'
import {InvagentCommand} from '../../src/cli/base-command.js'
import type {ApprovalsShowOutput} from '../../src/cli/output-schemas.js'
import {renderApproval} from '../../src/cli/render-queues.js'
import {queueFlags, stateFromFlags} from '../../src/cli/state-flags.js'

export default class ApprovalsShow extends InvagentCommand {
  static override summary = 'Show a parked plan: its writes, impact, root cause, validation and fingerprint.'
  static override examples = ['<%= config.bin %> <%= command.id %> A-1f2e3d4c']
  static override args = {
    id: Args.string({description: 'Approval id (from `invagent approvals list`).', required: true}),
  }
  static override flags = queueFlags

  async run(): Promise<z.infer<typeof ApprovalsShowOutput>> {
    const {args, flags} = await this.parse(ApprovalsShow)
    const state = await stateFromFlags(flags)
    try {
      const {approval, plan} = await showApproval(state, args.id)
      this.say(renderApproval(approval, plan))
      return {approval, plan}
    } finally {
      await state.close()
    }
  }
}
