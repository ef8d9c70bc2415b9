import {InvagentCommand} from '../../src/cli/base-command.js'
import {modelsDirFlag} from '../../src/cli/model-flags.js'
import {renderModelList} from '../../src/cli/render-models.js'
import {modelsDirectoryFromFlag} from '../../src/models/models-directory.js'
import {listModels, type ModelList} from '../../src/models/registry.js'

export default class ModelsList extends InvagentCommand {
  static override summary = 'List the registered models, and GGUF files in the models folder without a manifest.'
  static override description = `Reads every manifest (models/<name>.json) in the models folder: name, quantization, architecture, parameters, size, file, and whether the file is there with the recorded size (a stat, not a hash: run "models verify" for that). GGUF files without a manifest and manifests that do not validate are flagged. The folder is models/ in the current folder unless --models-dir or INVAGENT_MODELS_DIR says otherwise.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --models-dir /data/models --json',
  ]
  static override flags = {'models-dir': modelsDirFlag}

  async run(): Promise<ModelList> {
    const {flags} = await this.parse(ModelsList)
    const list = listModels(modelsDirectoryFromFlag(flags['models-dir']))
    this.say(renderModelList(list))
    return list
  }
}
