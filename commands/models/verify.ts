import {Args} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {modelsDirFlag} from '../../src/cli/model-flags.js'
import {hashProgressOnTerminal} from '../../src/models/hash-progress.js'
import {modelsDirectoryFromFlag} from '../../src/models/models-directory.js'
import {renderVerification} from '../../src/cli/render-models.js'
import {verifyModels, type VerifyModelsResult} from '../../src/models/verify-models.js'

export default class ModelsVerify extends InvagentCommand {
  static override summary =
    'Check every registered model: manifest valid, file present, size and sha256 as recorded, GGUF header readable.'
  static override description =
    'For each manifest in the models folder (or only NAME): the manifest validates; its file exists; the size matches; the GGUF header reads, the tensor data is complete, and architecture and quantization agree with the manifest; the sha256 of the file matches. Prints what is wrong for each model and exits 1 when any check fails. GGUF files without a manifest are listed but do not fail verification.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> phi3-q4',
    '<%= config.bin %> <%= command.id %> --json',
  ]
  static override args = {name: Args.string({description: 'Verify only this registered model.'})}
  static override flags = {'models-dir': modelsDirFlag}

  async run(): Promise<VerifyModelsResult> {
    const {args, flags} = await this.parse(ModelsVerify)
    const result = await verifyModels({
      directory: modelsDirectoryFromFlag(flags['models-dir']),
      name: args.name,
      progressFor: (name) => (this.jsonEnabled() ? undefined : hashProgressOnTerminal(process.stderr, name)),
    })
    this.say(renderVerification(result))
    if (!result.ok) process.exitCode = 1
    return result
  }
}
