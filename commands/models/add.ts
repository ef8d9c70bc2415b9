import {Args, Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {modelsDirFlag} from '../../src/cli/model-flags.js'
import {hashProgressOnTerminal} from '../../src/models/hash-progress.js'
import {currentCommandLine} from '../../src/models/manifest.js'
import {modelsDirectoryFromFlag} from '../../src/models/models-directory.js'
import {registerModel, type RegisteredModel} from '../../src/models/registry.js'
import {renderRegistration} from '../../src/cli/render-models.js'

export default class ModelsAdd extends InvagentCommand {
  static override summary =
    'Register a GGUF model: write its versioned manifest (sha256, size, architecture, quantization, provenance).'
  static override description =
    'Reads the GGUF header, hashes the file, and writes models/<name>.json. The file stays where it is: the manifest records it relative to the models folder when it lies inside it, else by absolute path. Afterwards --model accepts the name wherever a model is expected. Registering the same file under the same name again refreshes the manifest; a name taken by another file needs --force.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> models/Phi-3-mini-4k-instruct-q4.gguf --name phi3-q4 --base-model microsoft/Phi-3-mini-4k-instruct',
    '<%= config.bin %> <%= command.id %> models/playbook-f16.gguf --dataset-sha256 3f5a…e1 --json',
  ]
  static override args = {file: Args.string({description: 'The .gguf file.', required: true})}
  static override flags = {
    'models-dir': modelsDirFlag,
    name: Flags.string({summary: 'Registry name (default: the file name without .gguf).'}),
    'base-model': Flags.string({
      summary: 'The model it was trained or converted from (a registry name or an upstream id).',
    }),
    'dataset-sha256': Flags.string({summary: 'sha256 of the dataset it was fine-tuned on.'}),
    parent: Flags.string({summary: 'Registered model it was derived from (e.g. the F16 a quantization came from).'}),
    force: Flags.boolean({summary: 'Replace a manifest of the same name that describes another file.', default: false}),
  }

  async run(): Promise<RegisteredModel> {
    const {args, flags} = await this.parse(ModelsAdd)
    const registered = await registerModel(args.file, {
      directory: modelsDirectoryFromFlag(flags['models-dir']),
      name: flags.name,
      baseModel: flags['base-model'],
      datasetSha256: flags['dataset-sha256'],
      parent: flags.parent,
      overwrite: flags.force,
      createdBy: currentCommandLine(),
      onProgress: this.jsonEnabled() ? undefined : hashProgressOnTerminal(process.stderr, args.file),
    })
    this.say(renderRegistration(registered))
    return registered
  }
}
