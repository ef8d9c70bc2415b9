import {Flags} from '@oclif/core'
import type {z} from 'zod'

import {InvagentCommand} from '../../src/cli/base-command.js'
import type {ApprovalsListOutput} from '../../src/cli/output-schemas.js'
import {renderApprovals} from '../../src/cli/render-queues.js'
import {queueFlags, stateFromFlags} from '../../src/cli/state-flags.js'
import {APPROVAL_STATUSES, type ApprovalStatus} from '../../src/state/state-store.js'

export default class ApprovalsList extends InvagentCommand {
  static override summary = 'List plans parked for approval, and past decisions.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --status rejected --json',
  ]
  static override flags = {
    ...queueFlags,
    status: Flags.string({summary: 'Only approvals with this status.', options: [...APPROVAL_STATUSES]}),
  }

  async run(): Promise<z.infer<typeof ApprovalsListOutput>> {
    const {flags} = await this.parse(ApprovalsList)
    const state = await stateFromFlags(flags)
    try {
      const approvals = await state.listApprovals({status: flags.status as ApprovalStatus | undefined})
      this.say(renderApprovals(approvals))
      return {state: state.location, approvals}
    } finally {
      await state.close()
    }
  }
}
