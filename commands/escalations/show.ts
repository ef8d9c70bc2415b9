import {Args} from '@oclif/core'
import type {z} from 'zod'

import {UserError} from '../../src/errors.js'
import {InvagentCommand} from '../../src/cli/base-command.js'
import type {EscalationsShowOutput} from '../../src/cli/output-schemas.js'
import {renderEscalation} from '../../src/cli/render-queues.js'
import {queueFlags, stateFromFlags} from '../../src/cli/state-flags.js'

export default class EscalationsShow extends InvagentCommand {
  static override summary =
    'Show an escalation: evidence, what the engine tried, its root-cause guess and the next step.'
  static override examples = ['<%= config.bin %> <%= command.id %> E-9a8b7c6d']
  static override args = {
    id: Args.string({description: 'Escalation id (from `invagent escalations list`).', required: true}),
  }
  static override flags = queueFlags

  async run(): Promise<z.infer<typeof EscalationsShowOutput>> {
    const {args, flags} = await this.parse(EscalationsShow)
    const state = await stateFromFlags(flags)
    try {
      const escalation = await state.getEscalation(args.id)
      if (!escalation)
        throw new UserError(`no escalation "${args.id}" in ${state.location}`, {
          code: 'ESCALATION_NOT_FOUND',
          suggestions: ['List them with `invagent escalations list`.'],
        })
      this.say(renderEscalation(escalation))
      return {escalation}
    } finally {
      await state.close()
    }
  }
}
