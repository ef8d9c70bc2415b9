import {Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {buildLlama, type LlamaBuildResult} from '../../src/llama/build.js'
import {progressRendererFor} from '../../src/llama/progress.js'
import {interruptScope} from '../../src/process/interrupt.js'

export default class LlamaBuild extends InvagentCommand {
  static override summary = 'Build llama-server and llama-quantize from the llama.cpp source node-llama-cpp ships.'
  static override description = `Compiles with cmake and a C++ compiler (git, cmake and g++ must be installed; nothing is downloaded) into a cache outside the repository: $INVAGENT_CACHE or \${XDG_CACHE_HOME:-~/.cache}/invagent, under llama.cpp/<key>, where the key names the llama.cpp tag, the node-llama-cpp version and the source bundle's hash. The first build takes about 8 minutes on 2 cores; later calls find the binaries at once. The llama.cpp source (convert_hf_to_gguf.py, gguf-py) is kept next to them. The binaries are optimised for this CPU (GGML_NATIVE). It also compiles node-llama-cpp's binding from the same source with OpenMP (about 4 more minutes once; --no-binding skips it): the prebuilt one decodes single tokens on several threads two to three times slower. It is cached too and restored into node_modules after every npm ci.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
    '<%= config.bin %> <%= command.id %> --force --jobs 4',
  ]
  static override flags = {
    force: Flags.boolean({summary: 'Rebuild even when the cache already holds working binaries.', default: false}),
    jobs: Flags.integer({summary: 'Parallel compile jobs (default: the available cores).', min: 1}),
    binding: Flags.boolean({
      summary: "Also compile node-llama-cpp's binding from the same source, for the embedded engine.",
      default: true,
      allowNo: true,
    }),
  }

  async run(): Promise<LlamaBuildResult> {
    const {flags} = await this.parse(LlamaBuild)
    using interrupt = interruptScope()
    const result = await buildLlama({
      force: flags.force,
      jobs: flags.jobs,
      binding: flags.binding,
      signal: interrupt.signal,
      renderer: progressRendererFor(this.jsonEnabled()),
    })
    this.say(
      result.built
        ? `Built llama.cpp ${result.version} in ${result.seconds} s.`
        : `llama.cpp ${result.version} is already built (cache hit).`,
    )
    this.say(`  llama-server   ${result.binaries.llamaServer}  (version ${result.llamaServerVersion})`)
    this.say(`  llama-quantize ${result.binaries.llamaQuantize}`)
    this.say(`  source         ${result.sourceDir}`)
    if (result.nodeBinding)
      this.say(
        `  node binding   ${result.nodeBinding.installed}${result.nodeBinding.built ? ' (compiled now)' : result.nodeBinding.restored ? ' (restored from the cache)' : ''}`,
      )
    return result
  }
}
