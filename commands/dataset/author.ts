import {Flags} from '@oclif/core'
import {confirm, input, select} from '@inquirer/prompts'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {authorExample, type AuthorPrompter, type AuthorResult} from '../../src/dataset/author.js'
import {UserError} from '../../src/errors.js'

export default class DatasetAuthor extends InvagentCommand {
  static override summary = 'Write a playbook example by hand, stepping through a real sandbox inventory.'
  static override description = `Pick a rule and a root cause; invagent builds a sandbox inventory with that fault and runs the audit loop with you as the engine: write a thought, pick a tool and its arguments (checked as you type them), read the real observation, until resolve (validated by the loop) or escalate. The example is validated and, when you confirm, appended to --out. Interactive: it needs a terminal.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --out datasets/authored.jsonl --seed 7',
  ]
  static override flags = {
    out: Flags.string({summary: 'File the example is appended to.', default: 'datasets/authored.jsonl'}),
    seed: Flags.integer({summary: 'Seed of the sandbox inventory (random when omitted).', min: 0}),
  }

  async run(): Promise<AuthorResult> {
    const {flags} = await this.parse(DatasetAuthor)
    if (!process.stdin.isTTY || !process.stdout.isTTY) {
      throw new UserError('dataset author is interactive and needs a terminal (stdin and stdout must be a TTY)', {
        code: 'NEEDS_TTY',
        suggestions: [
          'Run `invagent dataset author` in a terminal; to produce examples without one, use `invagent dataset generate`.',
        ],
      })
    }
    const prompter: AuthorPrompter = {
      select: (message, choices) => select({message, choices: [...choices]}),
      input: (message, options) => input({message, default: options?.default, validate: options?.validate}),
      confirm: (message, defaultValue) => confirm({message, default: defaultValue}),
      show: (text) => this.logToStderr(text),
    }
    const result = await authorExample({out: flags.out, prompter, seed: flags.seed})
    this.say(
      result.appended
        ? `Appended ${result.example!.id} to ${result.out}.`
        : `Nothing appended${result.problems.length > 0 ? `: ${result.problems.join('; ')}` : '.'}`,
    )
    return result
  }
}
