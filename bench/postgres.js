// PostgreSQL benchmark: `inventory init` of 100,000 parts / ~1,000,000 transactions (generate,
// COPY, keys and indexes), then detection, every rule, against the bare ledger aggregate on the
// same server, alternated on one inventory so both see the same cache and machine load.
//
//   npm run bench            (builds first; this file runs after bench/run.js)
//   INVAGENT_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/invagent_bench node bench/postgres.js
//
// The database named is created when missing and its reference tables are replaced. Prints a
// table and the JSON of all results, and writes that JSON to bench/out/postgres.json. Without a
// reachable server it says so and exits 0: the other benchmarks do not depend on it.

import {PG_LEDGER_BALANCES_SQL} from '../dist/src/detect/postgres-detector.js'
import {redactLocatorText} from '../dist/src/inventory/locator.js'
import {PostgresInventory} from '../dist/src/inventory/postgres/backend.js'
import {initPostgresInventory} from '../dist/src/inventory/postgres/init.js'
import {log, machine, median, round, saveResults, timed} from './common.js'
import {table} from './table.js'

const URL = process.env.INVAGENT_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/invagent_bench'

const TARGETS = {detectOverBare: 1.2, initSeconds: 60}
const INVENTORY = {parts: 100_000, days: 30, faults: 500, seed: 1}
const DETECT_REPS = 9

async function benchInit() {
  log(
    `inventory init on ${redactLocatorText(URL)}: ` +
      `${INVENTORY.parts} parts, ${INVENTORY.days} days, ${INVENTORY.faults} faults ...`,
  )
  const {ms, result} = await timed(() => initPostgresInventory({url: URL, ...INVENTORY, force: true}))
  log(`  ${result.transactions} transactions in ${(ms / 1000).toFixed(1)} s`)
  const timings = Object.fromEntries(Object.entries(result.timings).map(([key, value]) => [key, round(value, 0)]))
  return {ms: round(ms, 0), transactions: result.transactions, faults: result.faults, timings}
}

async function benchDetect(init) {
  const backend = await PostgresInventory.open(URL)
  // The same rules on one connection only: what detection costs without its second connection.
  const serialBackend = await PostgresInventory.open(URL, {concurrentDetection: false})
  try {
    const bare = () => backend.db.query(PG_LEDGER_BALANCES_SQL)
    const detect = () => backend.detect()
    await bare()
    let findings = await detect()
    const serialFindings = await serialBackend.detect()
    if (JSON.stringify(serialFindings) !== JSON.stringify(findings))
      throw new Error('serial and concurrent detection differ')
    const bareMs = []
    const detectMs = []
    const serialMs = []
    for (let rep = 0; rep < DETECT_REPS; rep++) {
      const order = [
        ['bare', 'detect', 'serial'],
        ['detect', 'serial', 'bare'],
        ['serial', 'bare', 'detect'],
      ][rep % 3]
      for (const which of order) {
        if (which === 'bare') bareMs.push((await timed(bare)).ms)
        else if (which === 'serial') serialMs.push((await timed(() => serialBackend.detect())).ms)
        else {
          const run = await timed(detect)
          detectMs.push(run.ms)
          findings = run.result
        }
      }
    }
    const ids = new Set(findings.map((finding) => finding.id))
    const missed = init.faults.filter((fault) => !ids.has(`${fault.rule}:${fault.entity}`))
    return {
      reps: DETECT_REPS,
      detectMs: detectMs.map((value) => round(value)),
      bareMs: bareMs.map((value) => round(value)),
      serialMs: serialMs.map((value) => round(value)),
      detectMedianMs: round(median(detectMs)),
      serialMedianMs: round(median(serialMs)),
      serialRatio: round(median(serialMs) / median(bareMs), 3),
      bareMedianMs: round(median(bareMs)),
      ratio: round(median(detectMs) / median(bareMs), 3),
      findings: findings.length,
      faults: init.faults.length,
      faultsFound: init.faults.length - missed.length,
      missed: missed.slice(0, 10).map((fault) => `${fault.rule}:${fault.entity}`),
    }
  } finally {
    await backend.close()
    await serialBackend.close()
  }
}

async function main() {
  let server
  try {
    const probe = await import('../dist/src/inventory/postgres/init.js').then((module) =>
      module.connectCreatingDatabase(URL),
    )
    server = (await probe.one("SELECT current_setting('server_version') AS v")).v
    await probe.close()
  } catch (error) {
    console.log(`PostgreSQL benchmark skipped: ${error.message}`)
    return
  }
  const init = await benchInit()
  log('timing detection ...')
  const detect = await benchDetect(init)
  const pass = {
    detectOverBare: detect.ratio <= TARGETS.detectOverBare,
    faultsDetected: detect.faultsFound === detect.faults,
    initSeconds: init.ms / 1000 <= TARGETS.initSeconds,
  }
  const results = {
    at: new Date().toISOString(),
    machine: {...machine(), postgres: server},
    server: redactLocatorText(URL),
    targets: TARGETS,
    inventory: {...INVENTORY, transactions: init.transactions},
    init: {ms: init.ms, timings: init.timings},
    detect,
    pass,
  }
  const ok = (passed) => (passed ? 'ok' : 'MISS')
  const ms = (value) => `${value.toFixed(1)} ms`
  console.log(`invagent bench (PostgreSQL ${server}): ${results.machine.cpus} cores, node ${process.version}`)
  console.log(`inventory: ${INVENTORY.parts} parts, ${init.transactions} transactions, ${init.faults.length} faults`)
  console.log('')
  console.log(
    table([
      ['measure', 'value', 'baseline', 'ratio', 'target', ''],
      [
        `detect, all rules (median of ${DETECT_REPS})`,
        ms(detect.detectMedianMs),
        ms(detect.bareMedianMs),
        `${detect.ratio.toFixed(2)}x`,
        `<= ${TARGETS.detectOverBare}x`,
        ok(pass.detectOverBare),
      ],
      [
        '  the same on one connection',
        ms(detect.serialMedianMs),
        ms(detect.bareMedianMs),
        `${detect.serialRatio.toFixed(2)}x`,
        '',
        '',
      ],
      [
        '  findings; injected faults found',
        String(detect.findings),
        '',
        '',
        `${detect.faultsFound}/${detect.faults}`,
        ok(pass.faultsDetected),
      ],
      [
        'inventory init (generate, COPY, index)',
        `${(init.ms / 1000).toFixed(1)} s`,
        '',
        '',
        `<= ${TARGETS.initSeconds} s`,
        ok(pass.initSeconds),
      ],
      ['  generate (simulator, in memory)', `${(init.timings.generateMs / 1000).toFixed(1)} s`, '', '', '', ''],
      ['  COPY', `${(init.timings.copyMs / 1000).toFixed(1)} s`, '', '', '', ''],
      ['  keys, indexes, ANALYZE', `${(init.timings.indexMs / 1000).toFixed(1)} s`, '', '', '', ''],
    ]),
  )
  console.log('')
  console.log(
    'baseline, timed in this run: the bare ledger aggregate (PG_LEDGER_BALANCES_SQL) on the same server and inventory.',
  )
  console.log('detection runs the duplicate and reservation rules on a second connection in the same snapshot;')
  console.log('"on one connection" is the same detection with that turned off, timed in the same loop.')
  console.log('')
  saveResults('postgres.json', results)
  if (!pass.faultsDetected) process.exitCode = 1
}

await main()
