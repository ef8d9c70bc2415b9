import {Flags} from '@oclif/core'
import type {z} from 'zod'

import {InvagentCommand} from '../../src/cli/base-command.js'
import type {EscalationsListOutput} from '../../src/cli/output-schemas.js'
import {renderEscalations} from '../../src/cli/render-queues.js'
import {queueFlags, stateFromFlags} from '../../src/cli/state-flags.js'
import {ESCALATION_STATUSES, type Escalation} from '../../src/state/state-store.js'

export default class EscalationsList extends InvagentCommand {
  static override summary = 'List escalated findings waiting for a person (open by default).'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --status closed --json',
  ]
  static override flags = {
    ...queueFlags,
    status: Flags.string({
      summary: 'Only escalations with this status.',
      options: [...ESCALATION_STATUSES],
      default: 'open',
    }),
  }

  async run(): Promise<z.infer<typeof EscalationsListOutput>> {
    const {flags} = await this.parse(EscalationsList)
    const state = await stateFromFlags(flags)
    try {
      const escalations = await state.listEscalations({status: flags.status as Escalation['status']})
      this.say(renderEscalations(escalations))
      return {state: state.location, escalations}
    } finally {
      await state.close()
    }
  }
}
