import {existsSync, rmSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Worker} from 'node:worker_threads'

import {createEngine, type EngineOptions} from '../engines/create-engine.js'
import type {PolicyOptions} from '../agent/policy.js'
import type {Engine} from '../engines/engine.js'
import {InvagentError} from '../errors.js'
import type {TrialResult} from './result.js'
import {buildScenario} from './scenario.js'
import type {Scenario} from './suite.js'
import {runTrial} from './trial.js'

/*
 * Runs scenarios in sandboxes, in parallel: a pool of worker threads, each with its own engine
 * and its own copies of the inventories, takes scenarios from a queue. With one job (or where
 * the compiled worker is not available, as when tests run the TypeScript sources) everything
 * runs in this thread instead, one scenario after the other.
 */

export interface RunnerSettings {
  trials: number
  policy: PolicyOptions
  timeoutMs: number
  workDirectory: string
  keepFailedIn?: string
}

export interface RunnerOptions extends RunnerSettings {
  scenarios: readonly Scenario[]
  jobs: number
  engine: EngineOptions
  /** An engine object to use instead of creating one from `engine` (tests); runs in this thread. */
  engineInstance?: Engine
  signal?: AbortSignal
  /** After each scenario: how many are done, of how many, and that scenario's trials. */
  onScenario?: (done: number, total: number, results: TrialResult[]) => void
}

/** Messages between the pool and its workers. */
export type WorkerRequest = {type: 'task'; index: number; scenario: Scenario} | {type: 'close'}
export type WorkerReply =
  | {type: 'ready'}
  | {type: 'done'; index: number; results: TrialResult[]}
  | {type: 'fatal'; message: string; code: string}
export interface WorkerSetup extends RunnerSettings {
  engine: EngineOptions
}

/** Builds one scenario and runs its trials. A scenario that cannot be built errors every trial (a harness error). */
export async function runScenario(
  scenario: Scenario,
  index: number,
  engine: Engine,
  settings: RunnerSettings,
): Promise<TrialResult[]> {
  const directory = join(settings.workDirectory, String(index))
  try {
    let built
    try {
      built = await buildScenario(scenario, directory)
    } catch (error) {
      const message = `the scenario could not be built: ${error instanceof Error ? error.message : String(error)}`
      return Array.from({length: settings.trials}, (_, trial) => ({
        scenario: scenario.id,
        trial: trial + 1,
        status: 'error' as const,
        error: {kind: 'harness' as const, message},
        reasons: [],
        differences: [],
        differenceCount: 0,
        escalations: {expected: [], actual: [], missing: [], unexpected: []},
        unsafe: {outOfScope: [], newFindings: []},
        faults: [],
        findings: [],
        wallMs: 0,
      }))
    }
    const results: TrialResult[] = []
    for (let trial = 1; trial <= settings.trials; trial++) {
      results.push(
        await runTrial(built, engine, {
          trial,
          directory,
          policy: settings.policy,
          timeoutMs: settings.timeoutMs,
          keepFailedIn: settings.keepFailedIn,
        }),
      )
    }
    return results
  } finally {
    rmSync(directory, {recursive: true, force: true})
  }
}

const WORKER_URL = new URL('./eval-worker.js', import.meta.url)

/** How many jobs by default: every core for the rules engine; one for a model, which uses every core itself. */
export function defaultJobs(engine: string, scenarios: number): number {
  return Math.max(1, Math.min(scenarios, engine === 'rules' ? availableParallelism() : 1))
}

export async function runScenarios(options: RunnerOptions): Promise<TrialResult[]> {
  const jobs = Math.max(1, Math.min(options.jobs, options.scenarios.length))
  const parallel = jobs > 1 && !options.engineInstance && existsSync(fileURLToPath(WORKER_URL))
  const perScenario: TrialResult[][] = new Array(options.scenarios.length)
  let done = 0
  const record = (index: number, results: TrialResult[]) => {
    perScenario[index] = results
    done++
    options.onScenario?.(done, options.scenarios.length, results)
  }
  if (parallel) await runInWorkers(options, jobs, record)
  else await runInThread(options, record)
  return perScenario.flat()
}

async function runInThread(
  options: RunnerOptions,
  record: (index: number, results: TrialResult[]) => void,
): Promise<void> {
  const engine = options.engineInstance ?? (await createEngine(options.engine))
  try {
    for (const [index, scenario] of options.scenarios.entries()) {
      options.signal?.throwIfAborted()
      record(index, await runScenario(scenario, index, engine, options))
    }
  } finally {
    if (!options.engineInstance) await engine.close?.()
  }
}

function runInWorkers(
  options: RunnerOptions,
  jobs: number,
  record: (index: number, results: TrialResult[]) => void,
): Promise<void> {
  const engine: EngineOptions =
    options.engine.engine === 'embedded' && options.engine.threads === undefined
      ? {...options.engine, threads: Math.max(1, Math.floor(availableParallelism() / jobs))}
      : options.engine
  const setup: WorkerSetup = {
    engine,
    trials: options.trials,
    policy: options.policy,
    timeoutMs: options.timeoutMs,
    workDirectory: options.workDirectory,
    keepFailedIn: options.keepFailedIn,
  }
  return new Promise<void>((resolve, reject) => {
    const workers: Worker[] = []
    let next = 0
    let pending = options.scenarios.length
    let settled = false
    const finish = (error?: unknown) => {
      if (settled) return
      settled = true
      options.signal?.removeEventListener('abort', onAbort)
      for (const worker of workers) {
        if (error) void worker.terminate()
        else worker.postMessage({type: 'close'} satisfies WorkerRequest)
      }
      if (error) reject(error)
      else resolve()
    }
    const onAbort = () => finish(options.signal!.reason)
    options.signal?.addEventListener('abort', onAbort, {once: true})
    const feed = (worker: Worker) => {
      if (next >= options.scenarios.length) return
      const index = next++
      worker.postMessage({type: 'task', index, scenario: options.scenarios[index]} satisfies WorkerRequest)
    }
    for (let job = 0; job < jobs; job++) {
      const worker = new Worker(WORKER_URL, {workerData: setup})
      workers.push(worker)
      worker.on('message', (reply: WorkerReply) => {
        if (settled) return
        if (reply.type === 'fatal') return finish(new InvagentError(reply.message, {code: reply.code, exitCode: 2}))
        if (reply.type === 'done') {
          record(reply.index, reply.results)
          if (--pending === 0) return finish()
        }
        feed(worker)
      })
      worker.on('error', (error) =>
        finish(
          new InvagentError(`an evaluation worker crashed: ${error.message}`, {
            code: 'EVAL_WORKER',
            exitCode: 2,
            cause: error,
          }),
        ),
      )
      worker.on('exit', (code) => {
        if (!settled && code !== 0)
          finish(
            new InvagentError(`an evaluation worker exited with code ${code} before the run was complete`, {
              code: 'EVAL_WORKER',
              exitCode: 2,
            }),
          )
      })
    }
  })
}
