import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {UserError} from '../errors.js'
import {jobDirectory, listJobIds, loadJob, saveJob, type JobState} from './job-store.js'
import {cancelRemoteRun, followRemoteLog, queryRemoteState, remoteLogTail, type RemoteState} from './remote-control.js'
import {transportFor} from './run-job.js'

/*
 * `invagent train status|logs|cancel JOB`: what a job is doing, its log, and stopping it. They
 * read the job's state here and ask the host when it can be reached; when it cannot, they say so
 * and answer from what was recorded.
 */

export interface JobStatusReport {
  jobId: string
  status: JobState['status']
  runner: JobState['runner']
  host: string | null
  remoteDir: string
  createdAt: string
  updatedAt: string
  modelName: string
  stages: Array<{
    stage: string
    status: string
    detail: string | null
    startedAt: string | null
    finishedAt: string | null
  }>
  lastLoss: JobState['lastLoss']
  lastEvalLoss: JobState['lastEvalLoss']
  /** What the host says now; null when it was not asked (bundle jobs, --offline) or could not be reached. */
  remote: RemoteState | null
  /** Why the host could not be asked. */
  remoteError: string | null
  error: JobState['error']
  models: string[]
  /** What to run next, if anything. */
  next: string | null
}

function nextStep(job: JobState, status: JobState['status'], remote: RemoteState | null): string | null {
  switch (status) {
    case 'complete':
      return 'invagent models list'
    case 'bundled':
      return job.runner === 'bundle'
        ? `run the bundle by hand, then \`invagent train --resume ${job.id} --results DIR\``
        : `invagent train --resume ${job.id}`
    case 'running':
      return remote?.exists && !remote.running
        ? `invagent train --resume ${job.id} (the host finished; fetch the results)`
        : `invagent train --resume ${job.id} (reattach and stream the loss)`
    default:
      return job.bundle
        ? `invagent train --resume ${job.id}`
        : 'start a new job: invagent train --dataset … (this one stopped before its bundle was written)'
  }
}

function host(job: JobState): string | null {
  if (job.runner === 'local') return 'this machine'
  return job.host ? `${job.host.destination}${job.host.port !== undefined ? `:${job.host.port}` : ''}` : null
}

/** The job's state, with the host's view unless `offline`. */
export async function trainJobStatus(
  jobsDir: string,
  id: string,
  options: {offline?: boolean; signal?: AbortSignal} = {},
): Promise<JobStatusReport> {
  const job = loadJob(jobsDir, id)
  let remote: RemoteState | null = null
  let remoteError: string | null = null
  const transport = transportFor(job, jobsDir)
  if (transport && !options.offline && job.stages.upload?.status === 'done') {
    try {
      remote = await queryRemoteState(transport, job.remoteDir, options.signal)
    } catch (error) {
      if (options.signal?.aborted) throw error
      remoteError = (error as Error).message.split('\n')[0]
    }
  }
  let status = job.status
  if (
    remote?.exists &&
    !remote.running &&
    remote.status &&
    (status === 'running' || status === 'disconnected') &&
    remote.status.status !== 'complete'
  )
    status = remote.status.status
  const hostDone = new Set(remote?.exists ? remote.done : [])
  return {
    jobId: job.id,
    status,
    runner: job.runner,
    host: host(job),
    remoteDir: job.remoteDir,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    modelName: job.modelName,
    // The host may have got further than this machine saw.
    stages: Object.entries(job.stages).map(([stage, state]) => ({
      stage,
      status: hostDone.has(stage) && state.status !== 'skipped' ? 'done' : state.status,
      detail: state.detail ?? null,
      startedAt: state.startedAt ?? null,
      finishedAt: state.finishedAt ?? null,
    })),
    next: nextStep(job, status, remote),
    lastLoss: job.lastLoss,
    lastEvalLoss: job.lastEvalLoss,
    remote,
    remoteError,
    error: job.error,
    models: job.results.registered ?? [],
  }
}

/** Every job in the folder, newest last, from the recorded state only. */
export function listTrainJobs(
  jobsDir: string,
): Array<{jobId: string; status: string; runner: string; createdAt: string; modelName: string}> {
  return listJobIds(jobsDir).map((id) => {
    const job = loadJob(jobsDir, id)
    return {jobId: job.id, status: job.status, runner: job.runner, createdAt: job.createdAt, modelName: job.modelName}
  })
}

export interface JobLogsResult {
  jobId: string
  /** Where the lines came from: the host's run.log, or the copy streamed here. */
  source: 'host' | 'local'
  lines: string[]
  /** Why the host's log could not be read (then the local copy was used). */
  remoteError: string | null
}

/**
 * The job's log: the host's run.log when it can be reached, else the copy streamed here. With
 * `follow`, `onLine` receives new lines until the job stops running.
 */
export async function trainJobLogs(
  jobsDir: string,
  id: string,
  options: {lines?: number; follow?: boolean; onLine?: (line: string) => void; signal?: AbortSignal} = {},
): Promise<JobLogsResult> {
  const job = loadJob(jobsDir, id)
  const count = options.lines ?? 100
  const transport = transportFor(job, jobsDir)
  const mirror = join(jobDirectory(jobsDir, id), 'run.log')
  const local = () =>
    existsSync(mirror)
      ? readFileSync(mirror, 'utf8')
          .split('\n')
          .filter((line, index, all) => index < all.length - 1 || line !== '')
      : []
  if (!transport || job.stages.upload?.status !== 'done') {
    const lines = local().slice(-count)
    for (const line of lines) options.onLine?.(line)
    return {
      jobId: id,
      source: 'local',
      lines,
      remoteError: transport ? null : 'a bundle job runs where it was copied: its log is there',
    }
  }
  try {
    if (options.follow) {
      const state = await queryRemoteState(transport, job.remoteDir, options.signal)
      const total = state.exists ? state.logLines : 0
      const collected: string[] = []
      await followRemoteLog(
        transport,
        job.remoteDir,
        Math.max(1, total - count + 1),
        (line) => {
          collected.push(line)
          options.onLine?.(line)
        },
        options.signal,
      )
      return {jobId: id, source: 'host', lines: collected, remoteError: null}
    }
    const lines = await remoteLogTail(transport, job.remoteDir, count, options.signal)
    for (const line of lines) options.onLine?.(line)
    return {jobId: id, source: 'host', lines, remoteError: null}
  } catch (error) {
    if (options.signal?.aborted) throw error
    const lines = local().slice(-count)
    for (const line of lines) options.onLine?.(line)
    return {jobId: id, source: 'local', lines, remoteError: (error as Error).message.split('\n')[0]}
  }
}

export interface CancelResult {
  jobId: string
  /** cancelled: run.sh stopped on TERM; killed: it needed KILL; not-running: nothing ran. */
  outcome: 'cancelled' | 'killed' | 'not-running'
  status: JobState['status']
}

/** Stops the job's run.sh and everything it started on the host; the job can be resumed later. */
export async function cancelTrainJob(
  jobsDir: string,
  id: string,
  options: {graceSeconds?: number; signal?: AbortSignal} = {},
): Promise<CancelResult> {
  const job = loadJob(jobsDir, id)
  const transport = transportFor(job, jobsDir)
  if (!transport) {
    throw new UserError(
      `job ${id} runs by hand (--runner bundle): stop its run.sh where it runs (Ctrl+C, or kill the process in state/run.pid).`,
      {code: 'JOB_NOT_REACHABLE'},
    )
  }
  if (job.status === 'complete')
    throw new UserError(`job ${id} is already complete: nothing to cancel.`, {code: 'JOB_COMPLETE'})
  const outcome =
    job.stages.upload?.status === 'done'
      ? await cancelRemoteRun(transport, job.remoteDir, {graceSeconds: options.graceSeconds, signal: options.signal})
      : 'not-running'
  job.status = 'cancelled'
  job.error = {
    stage: Object.entries(job.stages).find(([, state]) => state.status === 'running')?.[0] ?? 'unknown',
    message: 'cancelled by `invagent train cancel`',
  }
  saveJob(jobsDir, job)
  return {jobId: id, outcome, status: job.status}
}
