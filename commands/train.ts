import {Flags} from '@oclif/core'

import {InvagentCommand} from '../src/cli/base-command.js'
import {modelsDirFlag} from '../src/cli/model-flags.js'
import {renderTrainResult} from '../src/cli/render-train.js'
import {jobsDirFlag} from '../src/cli/train-flags.js'
import {progressRendererFor} from '../src/llama/progress.js'
import {QUANT_TYPE_NAMES} from '../src/llama/quant-types.js'
import {currentCommandLine} from '../src/models/manifest.js'
import {modelsDirectoryFromFlag} from '../src/models/models-directory.js'
import {interruptScope} from '../src/process/interrupt.js'
import {trainJobsDirectory} from '../src/train/job-store.js'
import {runTrainJob, type TrainJobResult} from '../src/train/run-job.js'

export default class Train extends InvagentCommand {
  static override summary =
    'Fine-tune on a GPU reached by SSH (or this one) and bring back a quantized, registered GGUF.'
  static override description = `validate → export → bundle → upload → preflight → QLoRA train → merge (16-bit) → convert (GGUF) → verify → fetch (resumable, sha256-checked) → quantize → register. The job's state lives in .invagent/train/<job>: after a dropped connection or a crash, --resume JOB reattaches, and the host skips the stages it finished. Host keys are always checked (known_hosts, or --accept-new-host-key); nothing secret goes into the bundle. Settings come from --config (YAML or JSON; see the README), overridden by --base and --quant.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --dataset datasets/playbook.jsonl --eval datasets/eval.jsonl --host ubuntu@gpu-box --identity ~/.ssh/gpu.pem',
    '<%= config.bin %> <%= command.id %> --dataset datasets/playbook.jsonl --host ubuntu@gpu-box --config train.yaml --quant Q5_K_M --dry-run',
    '<%= config.bin %> <%= command.id %> --dataset datasets/playbook.jsonl --runner bundle',
    '<%= config.bin %> <%= command.id %> --resume train-20260131-142233-5f3a',
  ]
  static override flags = {
    dataset: Flags.string({summary: 'The playbook to train on (JSONL).'}),
    eval: Flags.string({summary: 'Held-out conversations for the eval loss (JSONL).'}),
    base: Flags.string({
      summary:
        'Base model: a folder on the GPU host (any causal LM with its own chat template), or a Hugging Face id already in its cache (default microsoft/Phi-3-mini-4k-instruct); the host never downloads.',
    }),
    config: Flags.string({summary: 'Training config, YAML or JSON (LoRA, learning rate, epochs, …).'}),
    quant: Flags.string({
      summary: 'Quantization applied here after the fetch (default Q4_K_M).',
      options: [...QUANT_TYPE_NAMES],
    }),
    runner: Flags.string({
      summary: "ssh (default with --host), local (this machine's GPU), or bundle (write it and print the commands).",
      options: ['ssh', 'local', 'bundle'],
    }),
    host: Flags.string({summary: 'The GPU machine: user@host (or an ~/.ssh/config alias).'}),
    port: Flags.integer({summary: 'Its SSH port.', min: 1, max: 65_535}),
    identity: Flags.string({summary: 'Private key to log in with (ssh -i).'}),
    'known-hosts': Flags.string({
      summary: 'known_hosts file to check the host key against (default ~/.ssh/known_hosts).',
    }),
    'accept-new-host-key': Flags.boolean({
      summary: 'Record the host key on first contact (a changed key is still refused).',
      default: false,
    }),
    'remote-dir': Flags.string({
      summary: 'Folder on the host for job folders, relative to the login folder (default invagent-jobs).',
    }),
    name: Flags.string({summary: 'Stem of the model names: <name>-f16, <name>-q4_k_m (default invagent-<job>).'}),
    'dry-run': Flags.boolean({summary: 'Write the bundle and print the plan; contact no host.', default: false}),
    resume: Flags.string({
      summary: 'Continue this job (after a dropped connection, Ctrl+C, a crash or a fixed failure).',
    }),
    results: Flags.string({summary: 'With --resume of a --runner bundle job: its folder, brought back from the host.'}),
    'jobs-dir': jobsDirFlag,
    'models-dir': modelsDirFlag,
    'adapters-dir': Flags.string({summary: 'Where LoRA adapters go, one folder per job.', default: 'adapters'}),
    'llama-quantize': Flags.string({
      summary: 'Path of llama-quantize (default: INVAGENT_LLAMA_QUANTIZE, PATH, then `invagent llama build`’s).',
    }),
  }

  async run(): Promise<TrainJobResult> {
    const {flags} = await this.parse(Train)
    using interrupt = interruptScope()
    const result = await runTrainJob({
      dataset: flags.dataset,
      evalDataset: flags.eval,
      configFile: flags.config,
      overrides: {baseModel: flags.base, quant: flags.quant as (typeof QUANT_TYPE_NAMES)[number] | undefined},
      runner: flags.runner as 'ssh' | 'local' | 'bundle' | undefined,
      host: flags.host
        ? {
            destination: flags.host,
            port: flags.port,
            identity: flags.identity,
            knownHosts: flags['known-hosts'],
            acceptNewHostKey: flags['accept-new-host-key'],
          }
        : undefined,
      remoteDir: flags['remote-dir'],
      name: flags.name,
      dryRun: flags['dry-run'],
      resume: flags.resume,
      results: flags.results,
      jobsDir: trainJobsDirectory(flags['jobs-dir']),
      modelsDir: modelsDirectoryFromFlag(flags['models-dir']),
      adaptersDir: flags['adapters-dir'],
      llamaQuantize: flags['llama-quantize'],
      renderer: progressRendererFor(this.jsonEnabled()),
      signal: interrupt.signal,
      createdBy: currentCommandLine(),
    })
    this.say(renderTrainResult(result))
    return result
  }
}
