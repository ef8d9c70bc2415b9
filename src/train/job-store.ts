import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {z} from 'zod'

import {ConfigError, didYouMean, UserError} from '../errors.js'

/*
 * A training job's state on this machine: `<jobs dir>/<job id>/job.json`, next to its bundle, the
 * log streamed so far and what was fetched. Rewritten atomically after every change, so that
 * `train --resume`, `train status|logs|cancel` and a crashed run all see the last state.
 */

/** The environment variable that moves the jobs folder away from .invagent/train. */
export const TRAIN_JOBS_DIR_ENV = 'INVAGENT_TRAIN_DIR'

export const JOB_SCHEMA_VERSION = 1

/** Stages on this machine before the job runs there. */
export const LOCAL_STAGES_BEFORE = ['validate', 'export', 'bundle'] as const
/** Stages run.sh runs on the training host, in order (each leaves state/<stage>.done there). */
export const REMOTE_STAGES = ['preflight', 'environment', 'train', 'merge', 'convert', 'verify', 'checksum'] as const
/** Stages on this machine after the run. */
export const LOCAL_STAGES_AFTER = ['fetch', 'check', 'quantize', 'register'] as const
export const ALL_STAGES = [...LOCAL_STAGES_BEFORE, 'upload', 'start', ...REMOTE_STAGES, ...LOCAL_STAGES_AFTER] as const
export type StageName = (typeof ALL_STAGES)[number]
export type RemoteStageName = (typeof REMOTE_STAGES)[number]

const stageState = z.object({
  status: z.enum(['pending', 'running', 'done', 'skipped', 'failed']),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  detail: z.string().optional(),
})

const fileRecord = z.object({path: z.string(), sha256: z.string(), size: z.number().int()})

export const JobState = z.object({
  schemaVersion: z.literal(JOB_SCHEMA_VERSION),
  id: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  runner: z.enum(['ssh', 'local', 'bundle']),
  /** Only the SSH destination, port and the paths of the key and known_hosts: never a secret. */
  host: z
    .object({
      destination: z.string(),
      port: z.number().int().optional(),
      identity: z.string().optional(),
      knownHosts: z.string().optional(),
      acceptNewHostKey: z.boolean().default(false),
    })
    .nullable(),
  /** The job's folder on the training host (relative to the login folder over SSH). */
  remoteDir: z.string(),
  status: z.enum(['created', 'bundled', 'running', 'disconnected', 'failed', 'cancelled', 'complete']),
  dataset: z
    .object({path: z.string(), sha256: z.string(), examples: z.number().int(), exportedSha256: z.string()})
    .nullable(),
  evalDataset: z
    .object({path: z.string(), sha256: z.string(), examples: z.number().int(), exportedSha256: z.string()})
    .nullable(),
  config: z.record(z.string(), z.unknown()),
  modelName: z.string(),
  llamaCpp: z.object({tag: z.string(), commit: z.string().nullable(), key: z.string()}).nullable(),
  git: z.object({commit: z.string().nullable(), dirty: z.boolean().nullable()}),
  bundle: z.object({dir: z.string(), tarball: z.string(), sha256: z.string(), size: z.number().int()}).nullable(),
  stages: z.record(z.string(), stageState),
  /** Lines of the host's run.log already streamed here (the next attach starts after them). */
  logLinesSeen: z.number().int().default(0),
  lastLoss: z
    .object({step: z.number(), totalSteps: z.number(), loss: z.number(), epoch: z.number().optional()})
    .nullable()
    .default(null),
  lastEvalLoss: z.object({step: z.number(), loss: z.number()}).nullable().default(null),
  results: z
    .object({
      gguf: fileRecord.optional(),
      quantized: fileRecord.extend({type: z.string()}).optional(),
      adapterDir: z.string().optional(),
      metrics: z.record(z.string(), z.unknown()).optional(),
      verify: z.record(z.string(), z.unknown()).optional(),
      registered: z.array(z.string()).optional(),
    })
    .default({}),
  error: z.object({stage: z.string(), message: z.string()}).nullable().default(null),
})

export type JobState = z.output<typeof JobState>

/** The jobs folder: `--jobs-dir`, INVAGENT_TRAIN_DIR, else .invagent/train under the current folder. */
export function trainJobsDirectory(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? (env[TRAIN_JOBS_DIR_ENV] || join('.invagent', 'train')))
}

/** `train-20260131-142233-5f3a`: sortable by time, unique enough for one user. */
export function newJobId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
  return `train-${stamp}-${randomBytes(2).toString('hex')}`
}

export function jobDirectory(jobsDir: string, id: string): string {
  return join(jobsDir, id)
}

export function jobFile(jobsDir: string, id: string): string {
  return join(jobsDir, id, 'job.json')
}

export function initialStages(): JobState['stages'] {
  return Object.fromEntries(ALL_STAGES.map((stage) => [stage, {status: 'pending' as const}]))
}

/** Writes job.json atomically (temporary file, then rename). */
export function saveJob(jobsDir: string, job: JobState): void {
  const directory = jobDirectory(jobsDir, job.id)
  mkdirSync(directory, {recursive: true})
  job.updatedAt = new Date().toISOString()
  const path = jobFile(jobsDir, job.id)
  const temporary = `${path}.${process.pid}.tmp`
  try {
    writeFileSync(temporary, `${JSON.stringify(job, null, 2)}\n`)
    renameSync(temporary, path)
  } catch (error) {
    rmSync(temporary, {force: true})
    throw new ConfigError(`cannot write ${path}: ${(error as Error).message}`, {code: 'JOB_UNWRITABLE', cause: error})
  }
}

export function listJobIds(jobsDir: string): string[] {
  if (!existsSync(jobsDir)) return []
  return readdirSync(jobsDir, {withFileTypes: true})
    .filter((entry) => entry.isDirectory() && existsSync(join(jobsDir, entry.name, 'job.json')))
    .map((entry) => entry.name)
    .sort()
}

/** Reads a job; an unknown id fails with the closest known one. */
export function loadJob(jobsDir: string, id: string): JobState {
  const path = jobFile(jobsDir, id)
  if (!existsSync(path)) {
    const known = listJobIds(jobsDir)
    const guess = didYouMean(id, known)
    throw new UserError(
      `no training job "${id}" in ${jobsDir}${guess ? ` — did you mean "${guess}"?` : known.length > 0 ? ` (jobs: ${known.slice(-5).join(', ')})` : ' (no job there yet)'}`,
      {
        code: 'JOB_UNKNOWN',
        suggestions: [
          'Jobs live in the folder `invagent train` ran in (.invagent/train), or in --jobs-dir / INVAGENT_TRAIN_DIR.',
        ],
      },
    )
  }
  let document: unknown
  try {
    document = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON (${(error as Error).message})`, {code: 'JOB_CORRUPT'})
  }
  const result = JobState.safeParse(document)
  if (!result.success) {
    throw new ConfigError(
      `${path}: not a job this invagent reads: ${result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
      {code: 'JOB_CORRUPT'},
    )
  }
  return result.data
}

/** Marks a stage's progress and saves. */
export function setStage(
  jobsDir: string,
  job: JobState,
  stage: StageName,
  status: JobState['stages'][string]['status'],
  detail?: string,
): void {
  const now = new Date().toISOString()
  const previous = job.stages[stage] ?? {status: 'pending'}
  job.stages[stage] = {
    status,
    startedAt: status === 'running' ? now : previous.startedAt,
    finishedAt: status === 'running' || status === 'pending' ? undefined : now,
    detail: detail ?? (status === previous.status ? previous.detail : undefined),
  }
  saveJob(jobsDir, job)
}
