import {availableParallelism} from 'node:os'

import {Flags, ux} from '@oclif/core'

import {InvagentCommand} from '../src/cli/base-command.js'
import {modelsDirFlag} from '../src/cli/model-flags.js'
import {describeServerEvent, serveUntilStopped, type ServeStoppedLine} from '../src/llama/serve-command.js'
import {
  DEFAULT_CTX_SIZE,
  DEFAULT_HOST,
  DEFAULT_PARALLEL,
  DEFAULT_PORT,
  DEFAULT_RESTART_POLICY,
} from '../src/llama/serve.js'
import {modelsDirectoryFromFlag} from '../src/models/models-directory.js'
import {resolveModel} from '../src/models/registry.js'
import {interruptScope} from '../src/process/interrupt.js'

export default class Serve extends InvagentCommand {
  static override summary =
    'Serve a GGUF model with llama-server, supervised: ready when healthy, restarted when it dies.'
  static override description = `Every llama-server flag is explicit (model, host, port, ctx-size, threads, parallel) and nothing is downloaded. Ready when GET /health answers 200; a server that dies is restarted with exponential backoff (a crash loop gives up with the tail of its stderr); Ctrl+C or SIGTERM stops it without leaving a process behind. Binds to loopback unless --host says otherwise. With --json, stdout is JSON Lines: {"event":"ready",…} once it answers, then restarts, and {"event":"stopped",…} at the end.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --model models/invagent-phi3-q4_k_m.gguf',
    '<%= config.bin %> <%= command.id %> --model models/tiny.gguf --port 18080 --ctx 8192 --parallel 2 --json',
  ]
  static override flags = {
    model: Flags.string({
      summary: 'The model to serve: a registered name (`invagent models list`) or the path of a GGUF file.',
      required: true,
    }),
    'models-dir': modelsDirFlag,
    host: Flags.string({summary: 'Address to listen on (loopback by default).', default: DEFAULT_HOST}),
    port: Flags.integer({
      summary: 'Port to listen on (0 picks a free one).',
      default: DEFAULT_PORT,
      min: 0,
      max: 65_535,
    }),
    ctx: Flags.integer({
      summary: 'Context size in tokens, shared by the parallel slots.',
      default: DEFAULT_CTX_SIZE,
      min: 1,
    }),
    threads: Flags.integer({summary: 'CPU threads (default: the available cores).', min: 1}),
    parallel: Flags.integer({summary: 'Parallel request slots.', default: DEFAULT_PARALLEL, min: 1}),
    'llama-server': Flags.string({
      summary: 'Path of llama-server (default: INVAGENT_LLAMA_SERVER, PATH, then `invagent llama build`’s).',
    }),
    'ready-timeout': Flags.integer({summary: 'Seconds to wait for the model to load.', default: 300, min: 1}),
    'max-restarts': Flags.integer({
      summary: 'Consecutive failed restarts before giving up (0: never restart).',
      default: DEFAULT_RESTART_POLICY.maxAttempts,
      min: 0,
    }),
  }

  async run(): Promise<ServeStoppedLine> {
    const {flags} = await this.parse(Serve)
    using interrupt = interruptScope()
    const stopped = await serveUntilStopped(
      {
        model: resolveModel(flags.model, {directory: modelsDirectoryFromFlag(flags['models-dir'])}).path,
        host: flags.host,
        port: flags.port,
        ctxSize: flags.ctx,
        threads: flags.threads ?? availableParallelism(),
        parallel: flags.parallel,
        llamaServer: flags['llama-server'],
        readyTimeoutMs: flags['ready-timeout'] * 1000,
        restart: flags['max-restarts'] === 0 ? false : {maxAttempts: flags['max-restarts']},
        signal: interrupt.signal,
      },
      {
        // JSON Lines under --json: one compact object per event, the last one being run()'s result.
        line: (line) => {
          if (this.jsonEnabled()) ux.stdout(JSON.stringify(line))
          else if (line.event === 'ready') this.log(describeServerEvent(line))
          else this.notice(describeServerEvent(line))
        },
        notice: (message) => this.notice(message),
      },
    )
    this.notice(describeServerEvent(stopped))
    return stopped
  }

  protected override logJson(json: unknown): void {
    ux.stdout(JSON.stringify(json))
  }
}
