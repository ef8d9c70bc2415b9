import {Args, Flags} from '@oclif/core'

import {InvagentCommand} from '../src/cli/base-command.js'
import {modelsDirFlag} from '../src/cli/model-flags.js'
import {renderQuantize} from '../src/cli/render-train.js'
import {QUANT_TYPE_NAMES, type QuantTypeName} from '../src/llama/quant-types.js'
import {quantizeAndRegister, type QuantizeAndRegisterResult} from '../src/llama/quantize-register.js'
import {currentCommandLine} from '../src/models/manifest.js'
import {modelsDirectoryFromFlag} from '../src/models/models-directory.js'
import {interruptScope} from '../src/process/interrupt.js'

export default class Quantize extends InvagentCommand {
  static override summary = 'Quantize a GGUF with llama-quantize, check the result, and register it.'
  static override description =
    "Refuses an input that is already quantized unless --allow-requantize. The output is written under a temporary name and kept only when it reads as GGUF, has the input's tensors, the requested file type, and a size that matches the type's bits per weight. A registered input becomes the parent of the new manifest, which keeps its base model, dataset and training provenance."
  static override examples = [
    '<%= config.bin %> <%= command.id %> models/playbook-f16.gguf',
    '<%= config.bin %> <%= command.id %> playbook-f16 --type Q8_0 --name playbook-q8',
    '<%= config.bin %> <%= command.id %> models/playbook-f16.gguf --type Q4_K_M --imatrix imatrix.dat --json',
  ]
  static override args = {
    input: Args.string({description: 'The GGUF to quantize: a path or a registered name.', required: true}),
  }
  static override flags = {
    type: Flags.string({summary: 'Quantization type.', options: [...QUANT_TYPE_NAMES], default: 'Q4_K_M'}),
    out: Flags.string({summary: 'Output file (default: next to the input, named after the type).'}),
    imatrix: Flags.string({summary: 'Importance matrix from llama-imatrix (needed for IQ types).'}),
    'allow-requantize': Flags.boolean({
      summary: 'Quantize an already quantized file (lower quality than from 16 bits).',
      default: false,
    }),
    force: Flags.boolean({summary: 'Replace an existing output file and manifest.', default: false}),
    name: Flags.string({summary: 'Registry name (default: the output file name without .gguf).'}),
    'models-dir': modelsDirFlag,
    threads: Flags.integer({summary: 'Threads for llama-quantize (default: the available cores).', min: 1}),
    'llama-quantize': Flags.string({
      summary: 'Path of llama-quantize (default: INVAGENT_LLAMA_QUANTIZE, PATH, then `invagent llama build`’s).',
    }),
  }

  async run(): Promise<QuantizeAndRegisterResult> {
    const {args, flags} = await this.parse(Quantize)
    using interrupt = interruptScope()
    let shown = 0
    const result = await quantizeAndRegister({
      input: args.input,
      type: flags.type as QuantTypeName,
      out: flags.out,
      imatrix: flags.imatrix,
      allowRequantize: flags['allow-requantize'],
      overwrite: flags.force,
      name: flags.name,
      threads: flags.threads,
      llamaQuantize: flags['llama-quantize'],
      directory: modelsDirectoryFromFlag(flags['models-dir']),
      createdBy: currentCommandLine(),
      signal: interrupt.signal,
      onProgress: (done, total, tensor) => {
        // A line per tenth on stderr: enough to see it move without flooding a log.
        if (done === total || done >= shown + Math.max(1, Math.floor(total / 10))) {
          shown = done
          this.notice(`quantizing ${done}/${total} ${tensor}`)
        }
      },
    })
    this.say(renderQuantize(result))
    return result
  }
}
