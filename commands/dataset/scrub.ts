import {Args, Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {renderScrubReport, scrubOutput, scrubProgressOnTerminal, type ScrubOutput} from '../../src/cli/render-scrub.js'
import {DEFAULT_MAX_LISTED, scrubFile} from '../../src/dataset/scrub.js'
import {interruptScope} from '../../src/process/interrupt.js'

export default class DatasetScrub extends InvagentCommand {
  static override summary =
    'Replace emails, phone numbers and person names in a JSONL dataset with consistent pseudonyms.'
  static override description = `Streams FILE line by line and replaces PII in every free-text string value (identifiers such as id, part_id, txn_id, sku, uom, tool, rule, rootCause, split, source, outcome, status and kind, tool names, and object keys are left alone). The same value gets the same pseudonym in every line, file and run with the same key: emails become person-<hex>@example.invalid, phone numbers +1 <area>-555-01xx (reserved for fiction), names synthetic given names and surnames. Pseudonyms are never detected again, so scrubbing twice changes nothing. Only the strings that change are rewritten; key order and every other byte of a line are kept, and lines that are not JSON are copied as they are and reported (exit 1). The output is written to a temporary file and renamed into place when complete. The values replaced are not printed, in the table or in --json, unless --show-values.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> datasets/playbook.jsonl',
    '<%= config.bin %> <%= command.id %> raw.jsonl --out clean.jsonl --json',
    'INVAGENT_SCRUB_KEY=… <%= config.bin %> <%= command.id %> raw.jsonl --in-place',
  ]
  static override args = {file: Args.string({description: 'The JSONL file to scrub.', required: true})}
  static override flags = {
    out: Flags.string({
      summary: 'Where to write the scrubbed copy.',
      description: 'Defaults to FILE with .scrubbed.jsonl in place of its extension.',
      exclusive: ['in-place'],
    }),
    'in-place': Flags.boolean({summary: 'Replace FILE itself with its scrubbed copy.', default: false}),
    'show-values': Flags.boolean({
      summary: 'Also print the values that were replaced (they are the PII).',
      default: false,
    }),
    key: Flags.string({
      summary: 'Key of the pseudonym hash.',
      description:
        'The same key gives the same pseudonyms in every file and run; a secret key keeps pseudonyms from being matched to known values by a dictionary. Defaults to a fixed public key.',
      env: 'INVAGENT_SCRUB_KEY',
    }),
    'max-listed': Flags.integer({
      summary: 'Changes and unparsable lines listed in the report (all are counted).',
      default: DEFAULT_MAX_LISTED,
      min: 0,
    }),
  }

  async run(): Promise<ScrubOutput> {
    const {args, flags} = await this.parse(DatasetScrub)
    using interrupt = interruptScope()
    const report = await scrubFile({
      input: args.file,
      out: flags.out,
      inPlace: flags['in-place'],
      key: flags.key,
      maxListed: flags['max-listed'],
      signal: interrupt.signal,
      onProgress: this.jsonEnabled() ? undefined : scrubProgressOnTerminal(process.stderr),
    })
    const output = scrubOutput(report, flags['show-values'])
    this.say(renderScrubReport(output))
    if (report.unparsableLines > 0) process.exitCode = 1
    return output
  }
}
