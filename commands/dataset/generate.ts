import {Flags} from '@oclif/core'
import {dirname, join} from 'node:path'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {renderTable} from '../../src/cli/table.js'
import {generateDataset, type GenerateResult} from '../../src/dataset/generate.js'

export default class DatasetGenerate extends InvagentCommand {
  static override summary = 'Generate playbook examples by solving injected faults with the rules playbook.'
  static override description = `Builds sandbox inventories with every root cause injected, lets the rules playbook troubleshoot each finding through the real tools (every observation is a real tool result), varies the wording of the thoughts, and keeps the examples whose outcome and root cause match the ground truth. The split is by inventory and deterministic from --seed; eval inventories use entity ids and integration-message phrasings no training inventory has. Both files are written atomically.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --count 3000 --eval-count 500 --seed 7 --out build/playbook.jsonl --json',
  ]
  static override flags = {
    count: Flags.integer({summary: 'Training examples.', default: 312, min: 1}),
    'eval-count': Flags.integer({summary: 'Eval examples.', default: 104, min: 0}),
    seed: Flags.integer({summary: 'Random seed.', default: 2026, min: 0}),
    out: Flags.string({summary: 'Training file.', default: 'datasets/playbook.jsonl'}),
    'eval-out': Flags.string({summary: 'Eval file (default: eval.jsonl next to --out).'}),
  }

  async run(): Promise<GenerateResult> {
    const {flags} = await this.parse(DatasetGenerate)
    const progress = process.stderr.isTTY && !this.jsonEnabled()
    const result = await generateDataset({
      count: flags.count,
      evalCount: flags['eval-count'],
      seed: flags.seed,
      out: flags.out,
      evalOut: flags['eval-out'] ?? join(dirname(flags.out), 'eval.jsonl'),
      onProgress: progress
        ? (split, done, target) =>
            process.stderr.write(`\r  ${split}: ${done}/${target} examples${done >= target ? '\n' : ''}`)
        : undefined,
    })
    this.say(
      renderTable(
        ['rule / root cause', 'train', 'eval'],
        Object.entries(result.byRootCause)
          .sort()
          .map(([key, value]) => [key, String(value.train), String(value.eval)]),
      ),
    )
    this.say(
      `\n${result.train.examples} train examples (${result.train.inventories} inventories) → ${result.train.file}`,
    )
    this.say(`${result.eval.examples} eval examples (${result.eval.inventories} inventories) → ${result.eval.file}`)
    this.say(
      `seed ${result.seed}; ${result.skipped} finding(s) left out (outcome or root cause differed from the ground truth)`,
    )
    return result
  }
}
