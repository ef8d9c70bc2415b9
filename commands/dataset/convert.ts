import {Args, Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {convertFile, type ConvertFileResult} from '../../src/dataset/convert-file.js'

export default class DatasetConvert extends InvagentCommand {
  static override summary = 'Convert the trajectory or instruction format into the playbook format.'
  static override description = `The trajectory format is {instruction, tools, trajectory, final_answer}; the instruction format is {instruction, input, output} with calls written as tool(arg="value", n=3) in output and optional "Observation: …" lines after them. A line converts when it names a finding (a rule and a P-/T-/R- id, or a finding object in input), every step has an observation and it ends in resolve or escalate; every other line is reported with the reason. Exits 1 when any line could not be converted.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> seeds.jsonl --from trajectory --to playbook --out converted.jsonl',
    '<%= config.bin %> <%= command.id %> notes.jsonl --from instruction --out converted.jsonl --json',
  ]
  static override args = {file: Args.string({description: 'JSONL file in the --from format.', required: true})}
  static override flags = {
    from: Flags.string({summary: 'Format of the input.', options: ['trajectory', 'instruction'], required: true}),
    to: Flags.string({summary: 'Format of the output.', options: ['playbook'], default: 'playbook'}),
    out: Flags.string({summary: 'Output JSONL file.', required: true}),
  }

  async run(): Promise<ConvertFileResult> {
    const {args, flags} = await this.parse(DatasetConvert)
    const result = await convertFile({input: args.file, out: flags.out, from: flags.from as 'trajectory'})
    for (const failure of result.failed.slice(0, 100))
      this.say(`${args.file}:${failure.line}: cannot convert: ${failure.reason}`)
    if (result.failed.length > 100) this.say(`… and ${result.failed.length - 100} more (all of them under --json)`)
    this.say(
      `${result.converted} of ${result.lines} lines converted into ${result.out}${result.failed.length > 0 ? `; ${result.failed.length} could not be` : ''}.`,
    )
    if (result.failed.length > 0) process.exitCode = 1
    return result
  }
}
