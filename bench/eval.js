// Evaluation benchmark: `invagent eval` on 200 generated scenarios with the rules engine, in
// parallel on every core, against the same run on one job as the baseline measured alongside it.
//
//   npm run bench            (builds first, then runs bench/run.js, bench/model.js and this file)
//
// Prints a table and the JSON of all results, and writes that JSON to bench/out/eval-results.json.

import {availableParallelism, cpus} from 'node:os'

import {runEval} from '../dist/src/eval/run-eval.js'
import {log, round, saveResults} from './common.js'
import {table} from './table.js'

const SCENARIOS = 200
const SEED = 1
const TARGETS = {wallSeconds: 60, pass1: 1}

async function measure(jobs) {
  const started = performance.now()
  const result = await runEval({
    scenarios: SCENARIOS,
    seed: SEED,
    trials: 1,
    gates: ['pass1>=1'],
    engine: {engine: 'rules'},
    jobs,
  })
  const wallMs = performance.now() - started
  const trialMs = result.results.reduce((sum, trial) => sum + trial.wallMs, 0)
  return {
    jobs,
    wallMs: round(wallMs, 0),
    msPerScenario: round(wallMs / SCENARIOS, 2),
    trialMsTotal: trialMs,
    verdict: result.verdict,
    pass1: result.metrics.pass1,
    unsafe: result.metrics.unsafe,
    errors: result.metrics.errors,
    findings: result.metrics.findings,
    faults: result.results.reduce((sum, trial) => sum + trial.faults.length, 0),
    suiteHash: result.suite.hash,
  }
}

async function main() {
  const cores = availableParallelism()
  log(`eval: ${SCENARIOS} scenarios on ${cores} job(s) ...`)
  const parallel = await measure(cores)
  log('eval: the same on 1 job (baseline) ...')
  const serial = await measure(1)
  const pass = {
    wallSeconds: parallel.wallMs / 1000 < TARGETS.wallSeconds,
    pass1: parallel.pass1 === TARGETS.pass1 && parallel.unsafe === 0 && parallel.errors === 0,
  }
  const results = {
    at: new Date().toISOString(),
    machine: {
      cpus: cores,
      cpu: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    targets: TARGETS,
    scenarios: SCENARIOS,
    seed: SEED,
    parallel,
    serial,
    speedup: round(serial.wallMs / parallel.wallMs, 2),
    pass,
  }
  const ok = (passed) => (passed ? 'ok' : 'MISS')
  console.log(`invagent eval bench: ${cores} cores, node ${process.version}`)
  console.log(
    `suite: ${SCENARIOS} scenarios drawn from seed ${SEED} (${parallel.faults} ` +
      `faults, ${parallel.findings} findings audited), rules engine, 1 trial`,
  )
  console.log('')
  console.log(
    table([
      ['measure', 'value', 'baseline', 'ratio', 'target', ''],
      [
        `eval wall time, ${cores} jobs`,
        `${(parallel.wallMs / 1000).toFixed(1)} s`,
        `${(serial.wallMs / 1000).toFixed(1)} s`,
        `${results.speedup.toFixed(2)}x`,
        `< ${TARGETS.wallSeconds} s`,
        ok(pass.wallSeconds),
      ],
      ['  per scenario', `${parallel.msPerScenario} ms`, `${serial.msPerScenario} ms`, '', '', ''],
      [
        'rules engine pass^1',
        parallel.pass1.toFixed(3),
        '',
        '',
        `${TARGETS.pass1.toFixed(3)}, 0 unsafe`,
        ok(pass.pass1),
      ],
    ]),
  )
  console.log('')
  console.log('baseline, timed in this run: the same eval on one job (no worker threads).')
  console.log('')
  saveResults('eval-results.json', results)
  // Timings drift on a shared machine, so only a correctness failure fails the command.
  if (!pass.pass1) process.exitCode = 1
}

await main()
