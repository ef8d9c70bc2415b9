import {Args, Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {renderValidationSummary} from '../../src/cli/render-dataset.js'
import {ModelTemplate} from '../../src/dataset/token-count.js'
import {validateDatasetFiles, type DatasetValidationReport} from '../../src/dataset/validate.js'
import {resolveTokenizerModel} from '../../src/llama/vocab.js'

export default class DatasetValidate extends InvagentCommand {
  static override summary = 'Check JSONL dataset files line by line and summarise what they cover.'
  static override description = `Streams each file (any size, flat memory) and reports every problem as file:line:col: message — invalid JSON (comments, blank lines, trailing commas), schema violations with their JSON pointer, unknown tools, arguments that fail a tool's schema, trajectories that do not end in resolve/escalate or lack observations, duplicate ids and contents, train/eval leakage (--eval; --train for a held-out file such as a question file), PII, and with --model examples over --max-tokens in that model's tokenizer. Reads the playbook format, the trajectory and instruction formats, and the question format {query, context?, expected} of \`invagent eval --questions\` (--fix keeps question lines as they are). Exits 0 only when every file is clean; --fix writes a cleaned copy in the playbook format.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> datasets/playbook.jsonl --eval datasets/eval.jsonl',
    '<%= config.bin %> <%= command.id %> raw.jsonl --format trajectory --fix clean.jsonl',
    '<%= config.bin %> <%= command.id %> questions.jsonl --train train.jsonl',
    '<%= config.bin %> <%= command.id %> datasets/playbook.jsonl --model phi-3 --max-tokens 2048',
    '<%= config.bin %> <%= command.id %> datasets/playbook.jsonl --model models/phi3-q4.gguf --max-tokens 2048 --json',
  ]
  static override args = {file: Args.string({description: 'JSONL files to validate.', required: true})}
  static override strict = false
  static override flags = {
    format: Flags.string({
      summary: 'Format of the files; auto tells them apart line by line.',
      options: ['auto', 'playbook', 'trajectory', 'instruction', 'question'],
      default: 'auto',
    }),
    eval: Flags.string({summary: 'Held-out file(s): examples of FILE also found there are leakage.', multiple: true}),
    train: Flags.string({
      summary: 'Training file(s), when FILE is held out (a question file): its questions found there are leakage.',
      multiple: true,
    }),
    model: Flags.string({
      summary:
        'Tokenizer that measures the examples: a registered model, a GGUF path, or a vocabulary llama.cpp ships (phi-3, llama-spm, llama-bpe, qwen2, …).',
      description:
        "A bundled vocabulary is the model family's real tokenizer and chat template without the weights, taken out of the llama.cpp source node-llama-cpp installs (no download).",
    }),
    'max-tokens': Flags.integer({
      summary: 'Longest example allowed, in the --model tokenizer.',
      min: 1,
      dependsOn: ['model'],
    }),
    fix: Flags.string({summary: 'Write a cleaned copy here: bad lines dropped, repairs made, formats converted.'}),
  }

  async run(): Promise<DatasetValidationReport> {
    const {argv, flags} = await this.parse(DatasetValidate)
    const tokenCounter = flags.model
      ? await ModelTemplate.load((await resolveTokenizerModel(flags.model)).path)
      : undefined
    const report = await validateDatasetFiles(argv as string[], {
      format: flags.format as 'auto',
      evalFiles: flags.eval,
      trainFiles: flags.train,
      tokenCounter,
      maxTokens: flags['max-tokens'],
      fix: flags.fix,
      onProblem: this.jsonEnabled()
        ? undefined
        : (problem) => this.log(`${problem.file}:${problem.line}:${problem.column}: ${problem.message}`),
    })
    this.say(`\n${renderValidationSummary(report)}`)
    if (!report.ok) process.exitCode = 1
    return report
  }
}
