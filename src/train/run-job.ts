import {appendFileSync, existsSync, mkdirSync, readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {Listr, type ListrTask} from 'listr2'

import {exportDataset} from '../dataset/export.js'
import {ModelTemplate} from '../dataset/token-count.js'
import {validateDatasetFiles} from '../dataset/validate.js'
import {ConfigError, ExternalToolError, InvagentError, UserError} from '../errors.js'
import type {ProgressRenderer} from '../llama/build.js'
import {listrOptions} from '../llama/progress.js'
import {quantizeModel} from '../llama/quantize.js'
import {bundledVocab, vocabForBaseModel} from '../llama/vocab.js'
import type {QuantTypeName} from '../llama/quant-types.js'
import {sha256File} from '../models/hash-file.js'
import {formatBytes} from '../models/hash-progress.js'
import {MODEL_NAME_PATTERN} from '../models/manifest.js'
import {registerModel} from '../models/registry.js'
import {LineRing} from '../process/long-running.js'
import {quoteArgument} from '../process/run-process.js'
import {checkLocalBaseModel, isModelPath} from './base-model.js'
import {
  buildJobBundle,
  locateLlamaConversion,
  parsePins,
  type LlamaConversionSource,
  type TrainerOverride,
} from './bundle.js'
import {checkTrainedGguf, ggufCheckError} from './check-gguf.js'
import type {TrainConfig, TrainConfigInput} from './config.js'
import {loadTrainConfig} from './config-file.js'
import {fetchVerified} from './fetch.js'
import {
  initialStages,
  JOB_SCHEMA_VERSION,
  jobDirectory,
  loadJob,
  newJobId,
  REMOTE_STAGES,
  saveJob,
  setStage,
  type JobState,
  type RemoteStageName,
  type StageName,
} from './job-store.js'
import {bundleCommands, describePlan, modelNames, type PlannedStage} from './plan.js'
import {projectGitState, trainingProvenance} from './provenance.js'
import {
  followRemoteLog,
  parseEventLine,
  queryRemoteState,
  readRemoteFile,
  startRemoteRun,
  unpackRemoteBundle,
  type JobEvent,
} from './remote-control.js'
import {RemoteStageWaiter} from './stage-waiter.js'
import {isConnectionFailure, LocalTransport, SshTransport, type JobTransport, type SshTarget} from './transport.js'

/*
 * `invagent train`: a validated playbook in, a fine-tuned, merged, quantized, registered GGUF out.
 * Each stage records itself in the job's state on disk, so a run that stops anywhere (a dropped
 * connection, Ctrl+C, a crash of this process, a failure fixed afterwards) continues with
 * `--resume JOB` from the first stage not done, and the host's run.sh skips its finished stages.
 */

export type Runner = 'ssh' | 'local' | 'bundle'

export interface TrainJobOptions {
  /** The playbook to train on (new jobs). */
  dataset?: string
  evalDataset?: string
  configFile?: string
  /** Command-line settings that override the config file. */
  overrides?: TrainConfigInput
  runner?: Runner
  host?: SshTarget
  /** Folder on the host that holds the job folders (relative to the login folder); default invagent-jobs. */
  remoteDir?: string
  /** Stem of the registered model names (default invagent-<job date and suffix>). */
  name?: string
  /** Write the bundle and print the plan; touch no host. */
  dryRun?: boolean
  /** Continue this job instead of starting one. */
  resume?: string
  /** With --resume of a bundle job: the job's folder brought back from the host. */
  results?: string
  jobsDir: string
  modelsDir: string
  adaptersDir: string
  llamaQuantize?: string
  renderer?: ProgressRenderer
  signal?: AbortSignal
  /** The command line, for the manifests. */
  createdBy: string
  /** Replaces train.py's stages (tests run a fixture trainer). */
  trainer?: TrainerOverride
  /** Where the conversion script comes from (default: `invagent llama build`'s source). */
  llamaSource?: LlamaConversionSource
  /** Every event streamed from the host, as it arrives. */
  onEvent?: (event: JobEvent) => void
}

export interface TrainJobModel {
  name: string
  path: string
  quantization: string
  size: number
  sha256: string
}

export interface TrainJobResult {
  jobId: string
  jobDir: string
  status: JobState['status']
  runner: Runner
  dryRun: boolean
  host: string | null
  remoteDir: string
  bundle: {dir: string; tarball: string; sha256: string; size: number} | null
  plan: PlannedStage[]
  /** For --runner bundle: what to run by hand. */
  commands: string[]
  models: TrainJobModel[]
  adapterDir: string | null
  trainLoss: number | null
  evalLoss: number | null
  warnings: string[]
}

const DEFAULT_REMOTE_DIR = 'invagent-jobs'

function hostOf(job: JobState): string | null {
  if (!job.host) return null
  return `${job.host.destination}${job.host.port !== undefined ? `:${job.host.port}` : ''}`
}

/** The transport a job's runner uses (none for a bundle job). */
export function transportFor(job: JobState, jobsDir: string): JobTransport | undefined {
  if (job.runner === 'ssh') {
    if (!job.host) throw new ConfigError(`job ${job.id} has no host recorded`, {code: 'JOB_CORRUPT'})
    return new SshTransport(job.host)
  }
  if (job.runner === 'local') return new LocalTransport(jobDirectory(jobsDir, job.id))
  return undefined
}

function pinnedOf(job: JobState): Record<string, string> {
  const requirements = job.bundle ? join(job.bundle.dir, 'requirements.txt') : undefined
  return requirements && existsSync(requirements) ? parsePins(readFileSync(requirements, 'utf8')) : {}
}

function problemList(problems: Array<{file: string; line: number; column: number; message: string}>): string {
  const shown = problems
    .slice(0, 20)
    .map((problem) => `  ${problem.file}:${problem.line}:${problem.column}: ${problem.message}`)
  if (problems.length > shown.length) shown.push(`  … and ${problems.length - shown.length} more`)
  return shown.join('\n')
}

/** A new job from the options: config validated, nothing written yet. */
async function createJob(options: TrainJobOptions): Promise<JobState> {
  if (!options.dataset)
    throw new UserError('--dataset is required to start a training job.', {
      code: 'TRAIN_NO_DATASET',
      suggestions: ['invagent train --dataset datasets/playbook.jsonl --host user@gpu-box'],
    })
  for (const [flag, path] of [
    ['--dataset', options.dataset],
    ['--eval', options.evalDataset],
  ] as const) {
    if (path !== undefined && !existsSync(path))
      throw new UserError(`${flag} ${path}: no such file.`, {code: 'DATASET_MISSING'})
  }
  const runner = options.runner ?? (options.host ? 'ssh' : undefined)
  if (runner === undefined) {
    throw new UserError(
      "where should the job run? Give --host user@gpu-box (SSH), --runner local (this machine's GPU) or --runner bundle (write it to run by hand).",
      {code: 'TRAIN_NO_RUNNER'},
    )
  }
  if (runner === 'ssh' && !options.host)
    throw new UserError('--runner ssh needs --host user@gpu-box.', {code: 'TRAIN_NO_HOST'})
  if (runner !== 'ssh' && options.host)
    throw new UserError(`--host is for --runner ssh, not --runner ${runner}.`, {code: 'TRAIN_HOST_UNUSED'})
  const config = loadTrainConfig({file: options.configFile, overrides: options.overrides})
  // On this machine the folder can be checked now, before a bundle is built for it.
  if (runner === 'local' && isModelPath(config.baseModel)) {
    checkLocalBaseModel(resolve(config.baseModel.replace(/^~(?=\/)/, process.env.HOME ?? '~')))
  }
  if (config.training.evalSteps !== undefined && options.evalDataset === undefined) {
    throw new ConfigError(
      'training.evalSteps is set but there is no eval dataset: pass --eval datasets/eval.jsonl or remove training.evalSteps.',
      {code: 'TRAIN_CONFIG_INVALID'},
    )
  }
  const id = newJobId()
  const modelName = options.name ?? `invagent-${id.replace(/^train-/, '')}`
  if (!MODEL_NAME_PATTERN.test(`${modelName}-q4_k_m`)) {
    throw new UserError(
      `--name ${JSON.stringify(modelName)}: use letters, digits, ".", "_" and "-", starting with a letter or digit.`,
      {code: 'MODEL_NAME_INVALID'},
    )
  }
  const remoteBase = (options.remoteDir ?? DEFAULT_REMOTE_DIR).replace(/^~\//, '').replace(/\/+$/, '')
  if (/["\n\r]/.test(remoteBase) || remoteBase === '')
    throw new UserError(`--remote-dir ${JSON.stringify(options.remoteDir)}: not a usable folder name.`, {
      code: 'REMOTE_DIR_INVALID',
    })
  const now = new Date().toISOString()
  return {
    schemaVersion: JOB_SCHEMA_VERSION,
    id,
    createdAt: now,
    updatedAt: now,
    runner,
    host: options.host
      ? {
          destination: options.host.destination,
          port: options.host.port,
          identity: options.host.identity && resolve(options.host.identity),
          knownHosts: options.host.knownHosts && resolve(options.host.knownHosts),
          acceptNewHostKey: options.host.acceptNewHostKey ?? false,
        }
      : null,
    remoteDir: runner === 'local' ? join(jobDirectory(options.jobsDir, id), 'work') : `${remoteBase}/${id}`,
    status: 'created',
    dataset: null,
    evalDataset: null,
    config: config as unknown as Record<string, unknown>,
    modelName,
    llamaCpp: null,
    git: await projectGitState(options.signal),
    bundle: null,
    stages: initialStages(),
    logLinesSeen: 0,
    lastLoss: null,
    lastEvalLoss: null,
    results: {},
    error: null,
  }
}

/** The job to continue, with connection details the command line may update (a rented box's address changes). */
function reopenJob(options: TrainJobOptions): JobState {
  if (
    options.dataset !== undefined ||
    options.evalDataset !== undefined ||
    options.configFile !== undefined ||
    options.dryRun
  ) {
    throw new UserError(
      '--resume continues a job as it was created: --dataset, --eval, --config and --dry-run do not apply.',
      {code: 'TRAIN_RESUME_FLAGS'},
    )
  }
  const job = loadJob(options.jobsDir, options.resume!)
  if (options.host && job.runner === 'ssh') {
    job.host = {
      ...job.host!,
      destination: options.host.destination,
      port: options.host.port ?? job.host!.port,
      identity: options.host.identity ? resolve(options.host.identity) : job.host!.identity,
      knownHosts: options.host.knownHosts ? resolve(options.host.knownHosts) : job.host!.knownHosts,
      acceptNewHostKey: options.host.acceptNewHostKey || job.host!.acceptNewHostKey,
    }
  }
  if (options.results !== undefined && job.runner !== 'bundle')
    throw new UserError('--results is for jobs of --runner bundle, which invagent cannot reach itself.', {
      code: 'TRAIN_RESULTS_UNUSED',
    })
  if (job.runner === 'bundle' && options.results === undefined && job.status !== 'complete') {
    throw new UserError(
      `job ${job.id} runs by hand (--runner bundle): bring its folder back and pass it with --results DIR.`,
      {code: 'TRAIN_RESULTS_NEEDED', suggestions: bundleCommands(job)},
    )
  }
  if (!job.bundle) {
    throw new UserError(
      `job ${job.id} stopped before its bundle was written (${job.error?.message ?? job.status}): there is nothing to continue.`,
      {
        code: 'JOB_NOT_RESUMABLE',
        suggestions: ['Fix the cause and start a new job: invagent train --dataset … (the same flags as before).'],
      },
    )
  }
  if (job.status === 'complete')
    throw new UserError(`job ${job.id} is already complete.`, {
      code: 'JOB_COMPLETE',
      suggestions: [`invagent train status ${job.id}`, 'invagent models list'],
    })
  return job
}

function isDone(job: JobState, stage: StageName): boolean {
  const status = job.stages[stage]?.status
  return status === 'done' || status === 'skipped'
}

interface RunContext {
  job: JobState
  options: TrainJobOptions
  transport?: JobTransport
  waiter: RemoteStageWaiter
  warnings: string[]
  /** The last lines of the host's log that were not events, for error messages. */
  tail: LineRing
  follow?: Promise<void>
  /** Messages of preflight-failed and error events, for the failing stage's error. */
  reasons: string[]
  models: TrainJobModel[]
}

function logFileOf(ctx: RunContext): string {
  return join(jobDirectory(ctx.options.jobsDir, ctx.job.id), 'run.log')
}

function countLines(path: string): number {
  if (!existsSync(path)) return 0
  const text = readFileSync(path, 'utf8')
  return text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
}

function describeLoss(event: JobEvent): string {
  const parts = [`step ${event.step}/${event.totalSteps}`, `loss ${Number(event.loss).toFixed(4)}`]
  if (typeof event.epoch === 'number') parts.push(`epoch ${event.epoch.toFixed(2)}`)
  if (typeof event.tokensPerSecond === 'number') parts.push(`${Math.round(event.tokensPerSecond)} tok/s`)
  return parts.join(' · ')
}

function stageFailure(ctx: RunContext, event: JobEvent): InvagentError {
  const stage = String(event.stage)
  const reasons = ctx.reasons.length > 0 ? ctx.reasons.join('; ') : `exit status ${String(event.exitCode)}`
  const where = ctx.transport?.description ?? 'the host'
  return new ExternalToolError(
    `the ${stage} stage failed on ${where}: ${reasons}\n--- last lines of the job's log ---\n${ctx.tail.toString()}`,
    {
      command: `run.sh (${stage})`,
      exitCode: typeof event.exitCode === 'number' ? event.exitCode : undefined,
      stderrTail: ctx.tail.toString(),
      suggestions: [
        `Fix the cause, then \`invagent train --resume ${ctx.job.id}\`: finished stages are skipped.`,
        `The whole log: \`invagent train logs ${ctx.job.id}\``,
      ],
    },
  )
}

/** Handles one line of the host's run.log: mirror it, and act on events. */
function handleLine(ctx: RunContext, line: string): void {
  appendFileSync(logFileOf(ctx), `${line}\n`)
  const event = parseEventLine(line)
  if (!event) {
    ctx.tail.push(line)
    return
  }
  ctx.options.onEvent?.(event)
  const {job} = ctx
  const jobsDir = ctx.options.jobsDir
  const stage = event.stage as RemoteStageName
  switch (event.event) {
    case 'stage-start':
      ctx.reasons = []
      setStage(jobsDir, job, stage, 'running')
      ctx.waiter.show(stage, 'running')
      break
    case 'stage-done':
      setStage(jobsDir, job, stage, 'done', `${String(event.seconds)} s`)
      ctx.waiter.done(stage)
      break
    case 'stage-skipped':
      setStage(jobsDir, job, stage, 'skipped', 'done in an earlier run')
      ctx.waiter.done(stage)
      break
    case 'stage-failed':
      setStage(jobsDir, job, stage, 'failed', `exit ${String(event.exitCode)}`)
      ctx.waiter.fail(stageFailure(ctx, event))
      break
    case 'preflight-failed':
    case 'error':
    case 'verify-failed':
      ctx.reasons.push(String(event.message))
      break
    case 'preflight-gpu':
      ctx.waiter.show(
        'preflight',
        `GPU ${String(event.name)}: ${String(event.freeMiB)} of ${String(event.totalMiB)} MiB free`,
      )
      break
    case 'warning':
      ctx.warnings.push(String(event.message))
      ctx.waiter.show(ctx.waiter.current() ?? 'train', `warning: ${String(event.message)}`)
      break
    case 'loss':
      job.lastLoss = {
        step: Number(event.step),
        totalSteps: Number(event.totalSteps),
        loss: Number(event.loss),
        epoch: typeof event.epoch === 'number' ? event.epoch : undefined,
      }
      saveJob(jobsDir, job)
      ctx.waiter.show('train', describeLoss(event))
      break
    case 'eval':
      job.lastEvalLoss = {step: Number(event.step), loss: Number(event.loss)}
      saveJob(jobsDir, job)
      ctx.waiter.show('train', `eval loss ${Number(event.loss).toFixed(4)} at step ${String(event.step)}`)
      break
    case 'resumed':
      ctx.waiter.show('train', `resumed from the checkpoint at step ${String(event.step)}/${String(event.totalSteps)}`)
      break
    case 'job-cancelled':
      ctx.waiter.fail(
        new UserError(
          `job ${job.id} was cancelled on ${ctx.transport?.description ?? 'the host'} during ${String(event.stage)}.`,
          {code: 'JOB_CANCELLED', suggestions: [`invagent train --resume ${job.id} runs it again from there.`]},
        ),
      )
      break
    default:
      break
  }
}

/** After run.sh ended (or the stream did): settle the stages from what the host says. */
async function settleAfterFollow(ctx: RunContext): Promise<void> {
  const state = await queryRemoteState(ctx.transport!, ctx.job.remoteDir, ctx.options.signal)
  if (!state.exists) {
    ctx.waiter.fail(
      new ExternalToolError(`the job's folder ${ctx.job.remoteDir} is gone from ${ctx.transport!.description}.`, {
        command: 'run.sh',
      }),
    )
    return
  }
  for (const stage of REMOTE_STAGES) if (state.done.includes(stage)) ctx.waiter.done(stage)
  if (state.status?.status === 'complete') ctx.waiter.allDone()
  else if (!state.running && ctx.waiter.current() !== undefined) {
    ctx.waiter.fail(
      new ExternalToolError(
        `run.sh stopped during ${ctx.waiter.current()} without saying why (killed, out of memory, or the host restarted?).\n--- last lines of the job's log ---\n${ctx.tail.toString()}`,
        {
          command: 'run.sh',
          suggestions: [`invagent train --resume ${ctx.job.id} starts it again; finished stages are skipped.`],
        },
      ),
    )
  }
}

function startFollowing(ctx: RunContext): void {
  const mirror = logFileOf(ctx)
  const from = countLines(mirror) + 1
  ctx.follow = followRemoteLog(
    ctx.transport!,
    ctx.job.remoteDir,
    from,
    (line) => handleLine(ctx, line),
    ctx.options.signal,
  )
    .then(() => settleAfterFollow(ctx))
    .catch((error: unknown) => {
      ctx.waiter.fail(error)
    })
}

function localTask(
  ctx: RunContext,
  stage: StageName,
  title: string,
  run: (task: {output: string; title: string}) => Promise<string | void>,
): ListrTask {
  return {
    title,
    skip: () => (isDone(ctx.job, stage) ? `${title} (done earlier)` : false),
    task: async (_context, task) => {
      setStage(ctx.options.jobsDir, ctx.job, stage, 'running')
      try {
        const detail = await run(task)
        setStage(ctx.options.jobsDir, ctx.job, stage, 'done', detail || undefined)
      } catch (error) {
        setStage(ctx.options.jobsDir, ctx.job, stage, 'failed', (error as Error).message.split('\n')[0])
        throw error
      }
    },
  }
}

/**
 * Measures conversations before a GPU is rented: train.py skips any longer than maxLength, so a
 * long example is caught here, in the base model's real tokenizer (its vocabulary, bundled with
 * llama.cpp's source), instead of being dropped silently on the host.
 */
async function lengthCheck(config: TrainConfig): Promise<{counter?: ModelTemplate; note: string}> {
  const notChecked = (why: string) => ({
    note: `token lengths not checked here (${why}); train.py skips conversations over ${config.training.maxLength} tokens and says how many`,
  })
  const vocab = vocabForBaseModel(config.baseModel)
  if (!vocab) return notChecked(`no bundled tokenizer for ${config.baseModel}`)
  try {
    return {counter: await ModelTemplate.load(await bundledVocab(vocab)), note: ''}
  } catch (error) {
    return notChecked((error as Error).message.split('\n')[0])
  }
}

function preparationTasks(ctx: RunContext): ListrTask[] {
  const {job, options} = ctx
  const jobDir = jobDirectory(options.jobsDir, job.id)
  return [
    localTask(ctx, 'validate', 'Validate the datasets', async (task) => {
      const files = [options.dataset!, ...(options.evalDataset ? [options.evalDataset] : [])]
      const problems: Array<{file: string; line: number; column: number; message: string; code?: string}> = []
      const config = job.config as TrainConfig
      const lengths = await lengthCheck(config)
      let longest = 0
      for (const file of files) {
        // The training set is also checked against the eval set: an example in both is leakage.
        const report = await validateDatasetFiles([file], {
          ...(file === options.dataset && options.evalDataset ? {evalFiles: [options.evalDataset]} : {}),
          ...(lengths.counter ? {tokenCounter: lengths.counter, maxTokens: config.training.maxLength} : {}),
        })
        problems.push(...report.problems)
        longest = Math.max(longest, report.tokens?.longest ?? 0)
        if (report.ok && report.examples === 0)
          problems.push({file, line: 1, column: 1, message: 'no examples: nothing to train on'})
      }
      task.output = lengths.counter
        ? `longest conversation ${longest} tokens in ${lengths.counter.model} (maxLength ${config.training.maxLength})`
        : lengths.note
      if (problems.length === 0) return task.output
      const tooLong = problems.some((problem) => problem.code === 'too-long')
      throw new UserError(
        `the dataset has ${problems.length} problem(s); training needs a clean one:\n${problemList(problems)}`,
        {
          code: 'DATASET_INVALID',
          suggestions: [
            'Fix them and run the command again (`invagent dataset validate FILE` lists them too).',
            ...(tooLong
              ? [
                  `For conversations over the limit: shorten them, or raise training.maxLength in the config (memory on the GPU grows with it).`,
                ]
              : []),
          ],
        },
      )
    }),
    localTask(ctx, 'export', 'Export chat messages', async (task) => {
      mkdirSync(join(jobDir, 'export'), {recursive: true})
      const exported = await exportDataset({
        input: options.dataset!,
        out: join(jobDir, 'export', 'train.jsonl'),
        format: 'chat',
      })
      job.dataset = {
        path: resolve(options.dataset!),
        sha256: await sha256File(options.dataset!),
        examples: exported.examples,
        exportedSha256: exported.sha256,
      }
      if (options.evalDataset) {
        const exportedEval = await exportDataset({
          input: options.evalDataset,
          out: join(jobDir, 'export', 'eval.jsonl'),
          format: 'chat',
        })
        job.evalDataset = {
          path: resolve(options.evalDataset),
          sha256: await sha256File(options.evalDataset),
          examples: exportedEval.examples,
          exportedSha256: exportedEval.sha256,
        }
      }
      task.output = `${job.dataset.examples} training${job.evalDataset ? `, ${job.evalDataset.examples} eval` : ''} conversations`
      return task.output
    }),
    localTask(ctx, 'bundle', 'Build the job bundle', async (task) => {
      const llama = options.llamaSource ?? (await locateLlamaConversion())
      job.llamaCpp = {tag: llama.tag, commit: llama.commit, key: llama.key}
      const built = await buildJobBundle({
        jobId: job.id,
        config: job.config as TrainConfig,
        trainData: join(jobDir, 'export', 'train.jsonl'),
        evalData: job.evalDataset ? join(jobDir, 'export', 'eval.jsonl') : undefined,
        directory: join(jobDir, 'bundle'),
        modelName: job.modelName,
        llama,
        trainer: options.trainer,
      })
      job.bundle = {dir: built.dir, tarball: built.tarball!, sha256: built.tarballSha256!, size: built.tarballSize!}
      job.status = 'bundled'
      task.output = `${built.files.length} files, ${formatBytes(built.tarballSize!)}`
      return task.output
    }),
  ]
}

function remoteTasks(ctx: RunContext): ListrTask[] {
  const {job, options} = ctx
  const transport = ctx.transport!
  const tasks: ListrTask[] = [
    {
      title: `Upload the bundle to ${transport.description}`,
      task: async (_context, task) => {
        const remoteTarball = `${job.remoteDir}/bundle.tar.gz`
        if (isDone(job, 'upload')) {
          // Uploaded before: skip it unless the host lost it (a new machine behind the same address).
          const state = await queryRemoteState(transport, job.remoteDir, options.signal)
          if (state.exists && state.bundle) {
            task.title = `Upload the bundle to ${transport.description} (done earlier)`
            return
          }
        }
        setStage(options.jobsDir, job, 'upload', 'running')
        for (let attempt = 1; ; attempt++) {
          task.output = `${formatBytes(job.bundle!.size)}${attempt > 1 ? ', again' : ''}`
          await transport.upload(job.bundle!.tarball, remoteTarball, {signal: options.signal})
          const unpacked = await unpackRemoteBundle(
            transport,
            job.remoteDir,
            'bundle.tar.gz',
            job.bundle!.sha256,
            options.signal,
          )
          if (unpacked.ok) break
          // A partial upload of another bundle, or corruption on the way: start over once.
          await transport.exec(`rm -f ${quoteArgument(remoteTarball)}`, {signal: options.signal})
          if (attempt === 2)
            throw new ExternalToolError(
              `the uploaded bundle's sha256 on ${transport.description} is ${unpacked.sha256}, not ${job.bundle!.sha256}, twice.`,
              {command: 'sftp put'},
            )
        }
        setStage(options.jobsDir, job, 'upload', 'done', `${job.remoteDir} on ${transport.description}`)
      },
    },
    {
      title: `Start the job on ${transport.description}`,
      task: async (_context, task) => {
        const state = await queryRemoteState(transport, job.remoteDir, options.signal)
        if (!state.exists || !state.bundle)
          throw new ExternalToolError(`the job's bundle is not in ${job.remoteDir} on ${transport.description}.`, {
            command: 'run.sh',
          })
        for (const stage of REMOTE_STAGES) if (state.done.includes(stage)) ctx.waiter.done(stage)
        if (state.running) task.title = `Reattached to the job on ${transport.description}`
        else if (state.status?.status === 'complete')
          task.title = `The job finished on ${transport.description} while detached`
        else {
          await startRemoteRun(transport, job.remoteDir, options.signal)
          task.title = `Started the job on ${transport.description}${state.done.length > 0 ? ` (continuing after ${state.done.at(-1)})` : ''}`
        }
        job.status = 'running'
        job.error = null
        setStage(options.jobsDir, job, 'start', 'done')
        startFollowing(ctx)
      },
    },
  ]
  const titles: Record<RemoteStageName, string> = {
    preflight: 'Preflight: Python, GPU, free memory and disk',
    environment: 'Python environment',
    train: `Train (${(job.config as TrainConfig).quantization.load4bit ? 'QLoRA' : 'LoRA'})`,
    merge: 'Merge into 16-bit base weights',
    convert: `Convert to ${(job.config as TrainConfig).convert.outType} GGUF`,
    verify: 'Verify the GGUF on the host',
    checksum: 'Checksum',
  }
  for (const stage of REMOTE_STAGES) {
    tasks.push({
      title: titles[stage],
      skip: () => (isDone(job, stage) && ctx.waiter.isSettled(stage) ? `${titles[stage]} (done earlier)` : false),
      task: async (_context, task) => {
        await ctx.waiter.wait(stage, task)
        if (stage === 'train' && job.lastLoss)
          task.title = `${titles.train}: final loss ${job.lastLoss.loss.toFixed(4)}${job.lastEvalLoss ? `, eval ${job.lastEvalLoss.loss.toFixed(4)}` : ''}`
      },
    })
  }
  return tasks
}

function completionTasks(ctx: RunContext): ListrTask[] {
  const {job, options} = ctx
  const transport = ctx.transport!
  const config = job.config as TrainConfig
  const names = modelNames(job)
  const fullPath = join(options.modelsDir, `${names.full}.gguf`)
  const quantizedPath = names.quantized ? join(options.modelsDir, `${names.quantized}.gguf`) : null
  return [
    localTask(ctx, 'fetch', 'Fetch the GGUF and the adapter', async (task) => {
      await ctx.follow
      const readJson = async (name: string) => {
        const text = await readRemoteFile(transport, `${job.remoteDir}/out/${name}`, options.signal)
        return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>)
      }
      job.results.metrics = await readJson('metrics.json')
      job.results.verify = await readJson('verify.json')
      mkdirSync(options.modelsDir, {recursive: true})
      const fetched = await fetchVerified(transport, `${job.remoteDir}/out/model.gguf`, fullPath, {
        signal: options.signal,
        onProgress: ({bytes, total}) => {
          task.output = `${formatBytes(bytes)} of ${formatBytes(total)}`
        },
      })
      job.results.gguf = {path: fetched.path, sha256: fetched.sha256, size: fetched.size}
      const adapterDir = join(options.adaptersDir, job.id)
      await transport.downloadDirectory(`${job.remoteDir}/out/adapter`, adapterDir, {signal: options.signal})
      job.results.adapterDir = adapterDir
      return `${formatBytes(fetched.size)}, sha256 ${fetched.sha256.slice(0, 12)}…${fetched.resumedFrom > 0 ? ` (resumed at ${formatBytes(fetched.resumedFrom)})` : ''}`
    }),
    localTask(ctx, 'check', 'Check the fetched GGUF', async () => {
      const metrics = job.results.metrics ?? {}
      const report = await checkTrainedGguf(
        fullPath,
        {
          architecture: typeof job.results.verify?.architecture === 'string' ? job.results.verify.architecture : null,
          eotToken: typeof metrics.eotToken === 'string' ? metrics.eotToken : null,
          vocabularySize: typeof metrics.vocabularySize === 'number' ? metrics.vocabularySize : null,
          name: typeof job.results.verify?.name === 'string' ? job.results.verify.name : null,
          probe: probeOf(metrics),
        },
        {signal: options.signal},
      )
      if (!report.ok) throw ggufCheckError(fullPath, report)
      return report.checks.map((check) => `${check.check} ✔`).join(', ')
    }),
    localTask(ctx, 'quantize', `Quantize to ${config.quant}`, async (task) => {
      if (!quantizedPath) return 'nothing to do'
      const result = await quantizeModel({
        input: fullPath,
        type: config.quant as QuantTypeName,
        out: quantizedPath,
        overwrite: true,
        llamaQuantize: options.llamaQuantize,
        signal: options.signal,
        onProgress: (done, total, tensor) => {
          task.output = `${done}/${total} ${tensor}`
        },
      })
      job.results.quantized = {path: result.output, sha256: result.sha256, size: result.outputSize, type: result.type}
      return `${formatBytes(result.outputSize)}, ${result.bitsPerWeight} bits per weight`
    }),
    localTask(ctx, 'register', 'Register the models', async () => {
      const training = trainingProvenance(job, pinnedOf(job))
      const common = {
        directory: options.modelsDir,
        baseModel: config.baseModel,
        datasetSha256: job.dataset?.sha256 ?? null,
        createdBy: options.createdBy,
        training,
        signal: options.signal,
      }
      const full = await registerModel(fullPath, {...common, name: names.full})
      const registered = [full]
      if (quantizedPath && names.quantized)
        registered.push(await registerModel(quantizedPath, {...common, name: names.quantized, parent: names.full}))
      job.results.registered = registered.map((entry) => entry.manifest.name)
      ctx.models.push(
        ...registered.map((entry) => ({
          name: entry.manifest.name,
          path: entry.path,
          quantization: entry.manifest.quantization,
          size: entry.manifest.size,
          sha256: entry.manifest.sha256,
        })),
      )
      return job.results.registered.join(', ')
    }),
  ]
}

/** The probe chat train.py recorded (its text and the ids training saw), when it is well-formed. */
function probeOf(metrics: Record<string, unknown>): {text: string; ids: number[]} | null {
  const probe = metrics.probe as {text?: unknown; ids?: unknown} | undefined
  if (!probe || typeof probe.text !== 'string' || !Array.isArray(probe.ids)) return null
  if (!probe.ids.every((id) => Number.isInteger(id))) return null
  return {text: probe.text, ids: probe.ids as number[]}
}

function resultOf(ctx: RunContext, dryRun: boolean): TrainJobResult {
  const {job, options} = ctx
  const metrics = job.results.metrics ?? {}
  return {
    jobId: job.id,
    jobDir: jobDirectory(options.jobsDir, job.id),
    status: job.status,
    runner: job.runner,
    dryRun,
    host: job.runner === 'local' ? 'this machine' : hostOf(job),
    remoteDir: job.remoteDir,
    bundle: job.bundle,
    plan: job.dataset
      ? describePlan(
          job,
          ctx.transport?.description ?? hostOf(job) ?? 'the GPU machine',
          pinnedOf(job),
          options.modelsDir,
        )
      : [],
    commands: job.runner === 'bundle' && job.status === 'bundled' ? bundleCommands(job) : [],
    models: ctx.models,
    adapterDir: job.results.adapterDir ?? null,
    trainLoss: typeof metrics.trainLoss === 'number' ? metrics.trainLoss : (job.lastLoss?.loss ?? null),
    evalLoss: typeof metrics.evalLoss === 'number' ? metrics.evalLoss : (job.lastEvalLoss?.loss ?? null),
    warnings: ctx.warnings,
  }
}

/** Adds the job id to the next steps of an error that stopped the job. */
function withJobSteps(error: unknown, job: JobState, where: string): unknown {
  if (!(error instanceof InvagentError)) return error
  const steps = error.suggestions.map((step) => step.replaceAll('JOB', job.id))
  if (isConnectionFailure(error) || error.code === 'INTERRUPTED') {
    steps.unshift(
      `The job goes on running on ${where}: reattach with \`invagent train --resume ${job.id}\`, watch it with \`invagent train status ${job.id}\`, stop it with \`invagent train cancel ${job.id}\`.`,
    )
  }
  ;(error as {suggestions: string[]}).suggestions = [...new Set(steps)]
  return error
}

/**
 * Runs (or continues) a training job through all its stages with listr2 progress on stderr, and
 * returns what it produced. `dryRun` and the bundle runner stop after writing the bundle.
 */
export async function runTrainJob(options: TrainJobOptions): Promise<TrainJobResult> {
  const resuming = options.resume !== undefined
  const job = resuming ? reopenJob(options) : await createJob(options)
  const ctx: RunContext = {
    job,
    options,
    waiter: new RemoteStageWaiter(),
    warnings: [],
    tail: new LineRing(40),
    reasons: [],
    models: [],
  }
  const baseModel = (job.config as TrainConfig).baseModel
  if (!resuming && !isModelPath(baseModel)) {
    ctx.warnings.push(
      `baseModel ${baseModel} is a Hugging Face id: the host runs offline (HF_HUB_OFFLINE=1), so it must already be in the host's ` +
        'Hugging Face cache; otherwise copy the model there and set baseModel to its folder.',
    )
  }
  if (resuming && options.results !== undefined) {
    // The host's results, brought back by hand: read them as if they were the host.
    ctx.transport = new LocalTransport(resolve(options.results))
    job.remoteDir = resolve(options.results)
  } else ctx.transport = transportFor(job, options.jobsDir)
  mkdirSync(jobDirectory(options.jobsDir, job.id), {recursive: true})
  saveJob(options.jobsDir, job)

  const stopsAfterBundle = options.dryRun || job.runner === 'bundle'
  const tasks: ListrTask[] = []
  if (!resuming) tasks.push(...preparationTasks(ctx))
  if (!stopsAfterBundle || (resuming && options.results !== undefined)) {
    if (resuming && options.results !== undefined) {
      tasks.push({
        title: `Read the results in ${options.results}`,
        task: async () => {
          const state = await queryRemoteState(ctx.transport!, job.remoteDir, options.signal)
          if (!state.exists || !(state.status?.status === 'complete' || state.done.includes('checksum'))) {
            throw new UserError(
              `${options.results} does not hold a finished job: expected state/status.json saying "complete" (or state/checksum.done) and out/model.gguf.`,
              {code: 'TRAIN_RESULTS_INCOMPLETE'},
            )
          }
          for (const stage of ['upload', 'start', ...REMOTE_STAGES] as const)
            setStage(options.jobsDir, job, stage, 'done', 'run by hand')
          // Read again on every import: results brought back a second time (a fixed run) replace the first.
          for (const name of ['metrics', 'verify'] as const) {
            const text = await readRemoteFile(ctx.transport!, `${job.remoteDir}/out/${name}.json`, options.signal)
            if (text !== undefined) job.results[name] = JSON.parse(text) as Record<string, unknown>
          }
          ctx.waiter.allDone()
          ctx.follow = Promise.resolve()
        },
      })
    } else tasks.push(...remoteTasks(ctx))
    tasks.push(...completionTasks(ctx))
  }

  const list = new Listr(tasks, listrOptions(options.renderer ?? 'simple'))
  try {
    await list.run()
  } catch (error) {
    const interrupted = options.signal?.aborted === true
    job.status =
      isConnectionFailure(error) || interrupted
        ? job.stages.start?.status === 'done'
          ? 'disconnected'
          : job.status
        : (error as InvagentError).code === 'JOB_CANCELLED'
          ? 'cancelled'
          : 'failed'
    const failedStage =
      Object.entries(job.stages).find(([, state]) => state.status === 'failed' || state.status === 'running')?.[0] ??
      'unknown'
    job.error = {stage: failedStage, message: (error as Error).message.split('\n')[0]}
    saveJob(options.jobsDir, job)
    await ctx.follow?.catch(() => {})
    throw withJobSteps(error, job, ctx.transport?.description ?? 'the host')
  }
  if (!stopsAfterBundle || (resuming && options.results !== undefined)) {
    job.status = 'complete'
    job.error = null
  }
  saveJob(options.jobsDir, job)
  return resultOf(ctx, options.dryRun ?? false)
}
