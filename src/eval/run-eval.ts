import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'

import {Listr} from 'listr2'

import type {EngineOptions} from '../engines/create-engine.js'
import {DEFAULT_POLICY, type PermissionProfile} from '../agent/policy.js'
import type {Engine} from '../engines/engine.js'
import {UserError} from '../errors.js'
import type {ProgressRenderer} from '../llama/build.js'
import {listrOptions} from '../llama/progress.js'
import {writeAtomically} from '../util/write-atomically.js'
import {compareWithBaseline, loadBaseline} from './baseline.js'
import {checkGates, evaluateGates, gatesFor} from './gates.js'
import {generateSuite} from './generate-suite.js'
import {toJunitXml} from './junit.js'
import {toMarkdown} from './markdown.js'
import {breakdowns, computeMetrics} from './metrics.js'
import type {EvalResult, TrialResult} from './result.js'
import {defaultJobs, runScenarios} from './runner.js'
import {faultKeysOf, loadSuite, suiteHash, type Suite} from './suite.js'

export interface EvalOptions {
  /** A suite file, or the name of a shipped suite (datasets/suites/NAME.json). */
  suite?: string
  /** Instead of a suite: this many scenarios drawn from `seed`. */
  scenarios?: number
  seed?: number
  trials: number
  gates: readonly string[]
  baseline?: string
  junit?: string
  report?: string
  /** Keep the database and audit log of every trial that did not pass here. */
  artifacts?: string
  engine: EngineOptions
  profile?: PermissionProfile
  jobs?: number
  /** Per trial. */
  timeoutSeconds?: number
  /** Harness/engine errors tolerated before the run counts as broken (exit 2). */
  maxErrors?: number
  /** An engine object instead of `engine` (tests). */
  engineInstance?: Engine
  signal?: AbortSignal
  renderer?: ProgressRenderer
}

export const DEFAULT_SUITE = 'default'
export const DEFAULT_TIMEOUT_SECONDS = 600

/** The shipped suites: datasets/suites/ of the installed package. */
export function shippedSuitesDirectory(): string {
  let directory = import.meta.dirname
  while (!existsSync(join(directory, 'datasets', 'suites'))) {
    const parent = dirname(directory)
    if (parent === directory) return join(import.meta.dirname, '..', '..', 'datasets', 'suites')
    directory = parent
  }
  return join(directory, 'datasets', 'suites')
}

function resolveSuite(options: EvalOptions): {suite: Suite; source: string} {
  if (options.scenarios !== undefined) {
    if (options.suite !== undefined)
      throw new UserError('give either --suite or --scenarios, not both', {
        suggestions: ['--suite runs a suite file; --scenarios N --seed S draws N scenarios.'],
      })
    return {
      suite: generateSuite({scenarios: options.scenarios, seed: options.seed ?? 1}),
      source: `generated (--scenarios ${options.scenarios} --seed ${options.seed ?? 1})`,
    }
  }
  const name = options.suite ?? DEFAULT_SUITE
  const shipped = join(shippedSuitesDirectory(), `${name}.json`)
  const path = existsSync(name) || !/^[\w-]+$/.test(name) || !existsSync(shipped) ? resolve(name) : shipped
  return {suite: loadSuite(path), source: path}
}

/**
 * `invagent eval`: runs every scenario of a suite K times against the engine, in sandboxes and
 * in parallel, scores the states left behind, and decides: exit code 0 when every gate passes,
 * 1 when one fails, 2 when the harness or the engine could not run (more than --max-errors
 * errored trials). Bad input throws before anything runs.
 */
export async function runEval(options: EvalOptions): Promise<EvalResult> {
  const startedAt = new Date()
  const started = performance.now()
  if (!Number.isInteger(options.trials) || options.trials < 1 || options.trials > 1000)
    throw new UserError(`--trials must be an integer from 1 to 1000, got ${options.trials}`)
  const {suite, source} = resolveSuite(options)
  const baseline = options.baseline === undefined ? undefined : loadBaseline(options.baseline)
  const gates = gatesFor(options.gates)
  const selectors = new Set(suite.scenarios.flatMap((scenario) => [...faultKeysOf(scenario), ...scenario.tags]))
  checkGates(gates, {trials: options.trials, selectors, hasBaseline: baseline !== undefined})
  const engineName = options.engineInstance?.name ?? options.engine.engine
  const jobs = options.jobs ?? defaultJobs(engineName, suite.scenarios.length)
  const profile = options.profile ?? DEFAULT_POLICY.profile
  const workDirectory = mkdtempSync(join(tmpdir(), 'invagent-eval-'))
  const artifacts = options.artifacts === undefined ? undefined : resolve(options.artifacts)
  let results: TrialResult[] = []
  try {
    let failed = 0
    const total = suite.scenarios.length
    const tasks = new Listr(
      [
        {
          title:
            `Run ${total} scenario${total === 1 ? '' : 's'} × ${options.trials} ` +
            `trial${options.trials === 1 ? '' : 's'} on the ${engineName} engine (${jobs} ` +
            `job${jobs === 1 ? '' : 's'})`,
          task: async (_context, task) => {
            const every = Math.max(1, Math.floor(total / 20))
            results = await runScenarios({
              scenarios: suite.scenarios,
              trials: options.trials,
              jobs,
              engine: options.engine,
              engineInstance: options.engineInstance,
              policy: {...DEFAULT_POLICY, profile},
              timeoutMs: (options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
              workDirectory,
              keepFailedIn: artifacts,
              signal: options.signal,
              onScenario: (done, count, trials) => {
                failed += trials.some((trial) => trial.status !== 'passed') ? 1 : 0
                if (options.renderer === 'default' || done % every === 0 || done === count)
                  task.output =
                    `${done}/${count} scenarios, ${failed} with a failing trial ` +
                    `(${((performance.now() - started) / 1000).toFixed(1)} s)`
              },
            })
          },
        },
      ],
      listrOptions(options.renderer ?? 'silent'),
    )
    await tasks.run()
  } finally {
    rmSync(workDirectory, {recursive: true, force: true, maxRetries: 3})
  }

  const metrics = computeMetrics(results, options.trials)
  const scored = {metrics, ...breakdowns(results, suite.scenarios, options.trials)}
  const gateResults = evaluateGates(gates, scored, baseline)
  const broken = metrics.errors > (options.maxErrors ?? 0)
  const verdict = broken ? 'error' : gateResults.every((gate) => gate.passed) ? 'pass' : 'fail'
  const exitCode = verdict === 'pass' ? 0 : verdict === 'fail' ? 1 : 2
  const suiteInfo = {
    name: suite.name,
    version: suite.version,
    hash: suiteHash(suite),
    source,
    scenarios: suite.scenarios.length,
  }
  const failedGates = gateResults.filter((gate) => !gate.passed).map((gate) => gate.expression)
  const summary = [
    verdict === 'error'
      ? `error: ${metrics.errors} trial${metrics.errors === 1 ? '' : 's'} could not run (harness or ` +
        `engine), more than the ${options.maxErrors ?? 0} tolerated`
      : verdict === 'fail'
        ? `fail: gate${failedGates.length === 1 ? '' : 's'} ${failedGates.join(', ')} failed`
        : `pass: all ${gateResults.length} gates passed`,
    `pass^1 ${metrics.pass1 === null ? 'n/a' : metrics.pass1.toFixed(3)} over ${suiteInfo.scenarios} ` +
      `scenarios × ${options.trials} trial${options.trials === 1 ? '' : 's'}, ${metrics.unsafe} unsafe ` +
      `write${metrics.unsafe === 1 ? '' : 's'}, ${metrics.errors} error${metrics.errors === 1 ? '' : 's'}`,
  ].join('; ')
  const result: EvalResult = {
    verdict,
    exitCode,
    summary,
    suite: suiteInfo,
    engine: {name: engineName, model: options.engine.model ?? null, url: options.engine.url ?? null, profile},
    trials: options.trials,
    jobs,
    startedAt: startedAt.toISOString(),
    wallMs: Math.round(performance.now() - started),
    ...scored,
    gates: gateResults,
    baseline: null,
    results,
    files: {junit: null, report: null, artifacts: artifacts ?? null},
  }
  if (baseline && options.baseline) result.baseline = compareWithBaseline(result, baseline, resolve(options.baseline))
  if (options.junit) result.files.junit = resolve(options.junit)
  if (options.report) result.files.report = resolve(options.report)
  if (options.junit) writeAtomically(options.junit, toJunitXml(result))
  if (options.report) writeAtomically(options.report, toMarkdown(result))
  return result
}
