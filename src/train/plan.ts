import {basename, relative} from 'node:path'

import {quoteArgument} from '../process/run-process.js'
import type {TrainConfig} from './config.js'
import type {JobState, StageName} from './job-store.js'

/** One line of the plan `train --dry-run` prints. */
export interface PlannedStage {
  stage: StageName
  where: 'here' | 'host'
  description: string
}

function display(path: string): string {
  const relativePath = relative(process.cwd(), path)
  return relativePath !== '' && !relativePath.startsWith('..') ? relativePath : path
}

/** The names a job's models are registered under. */
export function modelNames(job: Pick<JobState, 'modelName' | 'config'>): {full: string; quantized: string | null} {
  const config = job.config as TrainConfig
  const full = `${job.modelName}-${config.convert.outType}`
  const quantized =
    config.quant.toLowerCase() === config.convert.outType ? null : `${job.modelName}-${config.quant.toLowerCase()}`
  return {full, quantized}
}

function environmentPlan(config: TrainConfig, pinned: Record<string, string>): string {
  const wheels = config.runtime.wheels ? `the carried wheels of ${config.runtime.wheels}` : 'no carried wheels'
  const shown = ['torch', 'transformers', 'peft', 'bitsandbytes']
  const pins = Object.entries(pinned)
    .filter(([name]) => shown.includes(name))
    .map(([name, version]) => `${name} ${version}`)
    .join(', ')
  const python = config.runtime.python
  if (config.runtime.install === 'host') {
    return `${python}'s own packages when they fit together (versions recorded, differences from the pins warned); what is missing from ${wheels}, offline`
  }
  if (config.runtime.install === 'venv') {
    return `virtual environment with requirements.txt (${pins}) from ${config.runtime.wheels ? wheels : 'the package index, failing at once without a network'}`
  }
  return `${python}'s own packages as they are`
}

/** What each stage of a job will do, in order. */
export function describePlan(
  job: JobState,
  hostDescription: string,
  pinned: Record<string, string>,
  modelsDir: string,
): PlannedStage[] {
  const config = job.config as TrainConfig
  const {training, lora, quantization} = config
  const names = modelNames(job)
  const quantizing = quantization.load4bit
    ? `QLoRA on the ${quantization.quantType?.toUpperCase()} 4-bit base (bf16 LoRA if bitsandbytes cannot load)`
    : `LoRA on the ${quantization.computeDtype} base`
  const plan: PlannedStage[] = [
    {
      stage: 'validate',
      where: 'here',
      description: `${display(job.dataset!.path)}${job.evalDataset ? ` and ${display(job.evalDataset.path)}` : ''}: refuse any error`,
    },
    {
      stage: 'export',
      where: 'here',
      description: `${job.dataset!.examples} training${job.evalDataset ? ` and ${job.evalDataset.examples} eval` : ''} conversations as chat messages`,
    },
    {
      stage: 'bundle',
      where: 'here',
      description: `${display(job.bundle?.dir ?? '(bundle)')} (${job.bundle ? `${(job.bundle.size / 1024 / 1024).toFixed(1)} MiB tarball` : 'not written'}), llama.cpp ${job.llamaCpp?.tag ?? '?'} conversion script`,
    },
  ]
  if (job.runner !== 'bundle') {
    plan.push(
      {
        stage: 'upload',
        where: 'here',
        description: `the bundle to ${hostDescription}:${job.remoteDir}, checked file by file`,
      },
      {
        stage: 'start',
        where: 'host',
        description: 'run.sh, detached from the connection (a dropped link does not stop it)',
      },
    )
  }
  plan.push(
    {
      stage: 'preflight',
      where: 'host',
      description: `Python 3.10+, a GPU with ${config.runtime.minFreeVramGiB} GiB free (nvidia-smi), ${config.runtime.minFreeDiskGiB} GiB of free disk`,
    },
    {
      stage: 'environment',
      where: 'host',
      description: environmentPlan(config, pinned),
    },
    {
      stage: 'train',
      where: 'host',
      description: `${quantizing} of ${config.baseModel}: r ${lora.r}, alpha ${lora.alpha}, ${lora.targetModules === 'all-linear' ? 'all linear layers' : lora.targetModules.join(', ')}, lr ${training.learningRate}, ${training.epochs} epochs, max ${training.maxLength} tokens, seed ${config.seed}, loss on assistant turns only`,
    },
    {
      stage: 'merge',
      where: 'host',
      description: `the adapter into the ${config.merge.dtype} base weights (never 4-bit)`,
    },
    {
      stage: 'convert',
      where: 'host',
      description: `${config.convert.outType} GGUF with llama.cpp's convert_hf_to_gguf.py`,
    },
    {stage: 'verify', where: 'host', description: 'architecture, vocabulary, end-of-turn token, chat template'},
    {stage: 'checksum', where: 'host', description: 'sha256 of the GGUF'},
    {
      stage: 'fetch',
      where: 'here',
      description: `the GGUF to ${display(modelsDir)}/${names.full}.gguf (resumable, sha256-checked) and the adapter to adapters/${job.id}`,
    },
    {
      stage: 'check',
      where: 'here',
      description: 'the fetched GGUF again: architecture, vocabulary, end-of-turn token, chat template',
    },
    {
      stage: 'quantize',
      where: 'here',
      description: names.quantized
        ? `${config.quant} with llama-quantize → ${names.quantized}.gguf`
        : `nothing: ${config.quant} is the converted type`,
    },
    {
      stage: 'register',
      where: 'here',
      description: `manifests ${[names.full, names.quantized].filter(Boolean).join(', ')} (base, dataset sha256, config, package versions, losses, git commit)`,
    },
  )
  return plan
}

/** The commands to run a bundle by hand on a machine invagent cannot reach. */
export function bundleCommands(job: JobState): string[] {
  const tarball = job.bundle ? basename(job.bundle.tarball) : 'bundle.tar.gz'
  const dir = `invagent-jobs/${job.id}`
  return [
    `# 1. Copy ${job.bundle ? display(job.bundle.tarball) : tarball} to the GPU machine, then there:`,
    `mkdir -p ${dir} && tar -xzf ${tarball} -C ${dir} && cd ${dir} && sha256sum --check --quiet SHA256SUMS`,
    `bash run.sh 2>&1 | tee -a run.log      # rerun after any interruption: finished stages are skipped`,
    `# 2. Bring the folder back (at least out/ and state/), then here:`,
    `invagent train --resume ${job.id} --results ${quoteArgument(`PATH/TO/${job.id}`)}`,
  ]
}
