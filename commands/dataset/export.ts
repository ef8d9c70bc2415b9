import {Args, Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {DEFAULT_DATASET, exportDataset, type ExportResult} from '../../src/dataset/export.js'
import {EXPORT_FORMATS, type ExportFormat} from '../../src/dataset/export-formats.js'
import {resolveTokenizerModel} from '../../src/llama/vocab.js'

export default class DatasetExport extends InvagentCommand {
  static override summary =
    'Render playbook examples into chat messages, exactly as the audit engines prompt the model.'
  static override description = `Each example becomes {"id", "messages"}: the system prompt, the finding, every step as an assistant turn and every observation as a user turn, through the same renderer the embedded and server engines use, so training text equals inference text. Train on the assistant turns. With --template, each conversation is also rendered through the model's own chat template (from the GGUF) and the export fails, writing nothing, if the template drops or alters any message. --format openai writes {"messages", "tools"} with tool_calls and tool turns (TRL, axolotl); --format sharegpt writes LLaMA-Factory's {"conversations", "system", "tools"} with function_call and observation turns (without the steps' thoughts, which that format has no place for). Both are for base models whose own chat template renders tools (Qwen2.5, Llama 3.2).`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --format openai --out build/playbook.openai.jsonl',
    '<%= config.bin %> <%= command.id %> datasets/playbook.jsonl --template models/phi3.gguf --out build/train.chat.jsonl --json',
  ]
  static override args = {file: Args.string({description: 'Playbook JSONL file.', default: DEFAULT_DATASET})}
  static override flags = {
    format: Flags.string({
      summary:
        "chat (invagent's own prompt), openai (messages + tools, for TRL / axolotl) or sharegpt (LLaMA-Factory).",
      options: [...EXPORT_FORMATS],
      default: 'chat',
    }),
    template: Flags.string({
      summary:
        'Model whose chat template must keep every message: a registered model, a GGUF path, or a vocabulary llama.cpp ships (phi-3, …).',
    }),
    out: Flags.string({summary: 'Output JSONL file.', default: 'build/playbook.chat.jsonl'}),
  }

  async run(): Promise<ExportResult> {
    const {args, flags} = await this.parse(DatasetExport)
    const result = await exportDataset({
      input: args.file,
      out: flags.out,
      format: flags.format as ExportFormat,
      template: flags.template ? (await resolveTokenizerModel(flags.template)).path : undefined,
    })
    this.say(
      `${result.examples} conversations (${result.messages} messages, ${result.format} format) written to ${result.out}${result.template ? `; ${result.template.model}'s chat template keeps every message` : ''}.`,
    )
    this.say(`sha256 ${result.sha256}`)
    return result
  }
}
