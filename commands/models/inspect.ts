import {Args, Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {modelsDirFlag} from '../../src/cli/model-flags.js'
import {hashProgressOnTerminal} from '../../src/models/hash-progress.js'
import {inspectGguf, type GgufInspection} from '../../src/models/inspect-gguf.js'
import {modelsDirectoryFromFlag} from '../../src/models/models-directory.js'
import {resolveModel} from '../../src/models/registry.js'
import {renderInspection} from '../../src/cli/render-models.js'

export default class ModelsInspect extends InvagentCommand {
  static override summary =
    'Show what a GGUF model is: architecture, parameters, quantization, context, chat template, size and sha256.'
  static override description =
    'MODEL is a registered name (see "models list") or the path of a .gguf file. Reads the GGUF header with node-llama-cpp (only the header: the file is never loaded), checks the tensor data is complete, and streams the file through sha256 (with progress on a terminal for big files; --no-hash skips it).'
  static override examples = [
    '<%= config.bin %> <%= command.id %> models/Phi-3-mini-4k-instruct-q4.gguf',
    '<%= config.bin %> <%= command.id %> phi3-q4 --json',
    '<%= config.bin %> <%= command.id %> ./big.gguf --no-hash',
  ]
  static override args = {
    model: Args.string({description: 'A registered model name or the path of a .gguf file.', required: true}),
  }
  static override flags = {
    'models-dir': modelsDirFlag,
    hash: Flags.boolean({
      summary: 'Compute the sha256 of the file (--no-hash skips it).',
      default: true,
      allowNo: true,
    }),
  }

  async run(): Promise<GgufInspection & {registryName: string | null; manifest: string | null}> {
    const {args, flags} = await this.parse(ModelsInspect)
    const model = resolveModel(args.model, {directory: modelsDirectoryFromFlag(flags['models-dir'])})
    const onProgress = this.jsonEnabled() ? undefined : hashProgressOnTerminal(process.stderr, model.name ?? args.model)
    const inspection = {
      ...(await inspectGguf(model.path, {hash: flags.hash, onProgress})),
      registryName: model.name,
      manifest: model.manifestPath,
    }
    this.say(renderInspection(inspection))
    return inspection
  }
}
