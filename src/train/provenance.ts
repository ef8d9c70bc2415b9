import {resolve} from 'node:path'

import type {TrainingProvenance} from '../models/manifest.js'
import {runProcess} from '../process/run-process.js'
import {bundleFilesDirectory} from './bundle.js'
import type {JobState} from './job-store.js'

/** The invagent checkout's commit and whether it has uncommitted changes; nulls outside a git checkout. */
export async function projectGitState(signal?: AbortSignal): Promise<{commit: string | null; dirty: boolean | null}> {
  const root = resolve(bundleFilesDirectory(), '..', '..', '..')
  try {
    const commit = (
      await runProcess('git', ['-C', root, 'rev-parse', 'HEAD'], {signal, timeoutMs: 20_000})
    ).stdout.trim()
    const status = (
      await runProcess('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], {
        signal,
        timeoutMs: 20_000,
      })
    ).stdout.trim()
    return {commit, dirty: status !== ''}
  } catch (error) {
    if (signal?.aborted) throw error
    return {commit: null, dirty: null}
  }
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

/** What a trained model's manifest records about how it was made. */
export function trainingProvenance(job: JobState, pinned: Record<string, string>): TrainingProvenance {
  const metrics = job.results.metrics ?? {}
  const packages = (metrics.packages ?? {}) as Record<string, string | null>
  return {
    jobId: job.id,
    runner: job.runner,
    config: job.config,
    evalDatasetSha256: job.evalDataset?.sha256 ?? null,
    packages,
    pinned,
    llamaCpp: job.llamaCpp ?? {tag: 'unknown', commit: null, key: 'unknown'},
    mode: typeof metrics.mode === 'string' ? metrics.mode : null,
    trainLoss: numberOrNull(metrics.trainLoss),
    evalLoss: numberOrNull(metrics.evalLoss),
    steps: typeof metrics.steps === 'number' ? Math.round(metrics.steps) : null,
    gitCommit: job.git.commit,
    gitDirty: job.git.dirty,
    adapter: job.results.adapterDir ?? null,
  }
}
