import {Args, Flags} from '@oclif/core'
import type {z} from 'zod'

import {closeEscalation} from '../../src/agent/approvals.js'
import {InvagentCommand} from '../../src/cli/base-command.js'
import type {EscalationsCloseOutput} from '../../src/cli/output-schemas.js'
import {decisionFlags, deciderFromFlags, logDirectoryFor, stateFromFlags} from '../../src/cli/state-flags.js'

export default class EscalationsClose extends InvagentCommand {
  static override summary = 'Close an escalation with a note saying what was done.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> E-9a8b7c6d --note "counted 40 on the shelf, posted an adjustment in the ERP"',
  ]
  static override args = {
    id: Args.string({description: 'Escalation id (from `invagent escalations list`).', required: true}),
  }
  static override flags = {
    ...decisionFlags,
    note: Flags.string({summary: 'What was done about it, for the log.', required: true}),
  }

  async run(): Promise<z.infer<typeof EscalationsCloseOutput>> {
    const {args, flags} = await this.parse(EscalationsClose)
    const state = await stateFromFlags(flags)
    try {
      const result = await closeEscalation(args.id, {
        state,
        by: deciderFromFlags(flags),
        note: flags.note,
        logDirectoryFor,
      })
      this.say(`${args.id}: closed by ${result.escalation.closedBy}`)
      return result
    } finally {
      await state.close()
    }
  }
}
