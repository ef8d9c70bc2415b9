// Performance benchmark: detection against the bare ledger aggregate, dry-run audit throughput,
// and cold CLI start-up. Every figure is paired with a baseline measured in the same run, because
// absolute timings on a shared machine drift from one run to the next while ratios hold steady.
//
//   npm run bench            (builds first, then runs this file)
//
// Prints a table and the JSON of all results, and writes that JSON to bench/out/results.json.

import {spawnSync} from 'node:child_process'
import {copyFileSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {AuditLog} from '../dist/src/agent/audit-log.js'
import {runAudit} from '../dist/src/agent/audit.js'
import {DEFAULT_POLICY} from '../dist/src/agent/policy.js'
import {LEDGER_BALANCES_SQL} from '../dist/src/detect/sqlite-detector.js'
import {RulesEngine} from '../dist/src/engines/rules-engine.js'
import {SqliteInventory} from '../dist/src/inventory/sqlite-backend.js'
import {SqliteStateStore} from '../dist/src/state/sqlite-state.js'
import {cachedInventory, dryRunAudit, log, machine, median, OUT, ROOT, round, saveResults, timed} from './common.js'
import {table} from './table.js'

const TARGETS = {detectOverBare: 1.2, findingsPerSecond: 500, versionMs: 250, holdP99Ms: 50}

const DETECT_INVENTORY = {parts: 100_000, days: 30, faults: 500, seed: 1}
const AUDIT_INVENTORY = {parts: 20_000, days: 30, faults: 5_000, seed: 2}
const DETECT_REPS = 7
const STARTUP_REPS = 10

function missedFaults(findings, faults) {
  const ids = new Set(findings.map((finding) => finding.id))
  return faults.filter((fault) => !ids.has(`${fault.rule}:${fault.entity}`))
}

/** Detection and the bare aggregate alternate on one connection, so both see the same cache and machine load. */
async function benchDetect(inventory) {
  const backend = SqliteInventory.open(inventory.path)
  try {
    const bare = async () => backend.db.all(LEDGER_BALANCES_SQL)
    const detect = async () => backend.detect()
    await bare()
    let findings = await detect()
    const bareMs = []
    const detectMs = []
    for (let rep = 0; rep < DETECT_REPS; rep++) {
      // Alternate which goes first so neither always runs right after the other.
      const order = rep % 2 === 0 ? ['bare', 'detect'] : ['detect', 'bare']
      for (const which of order) {
        if (which === 'bare') bareMs.push((await timed(bare)).ms)
        else {
          const run = await timed(detect)
          detectMs.push(run.ms)
          findings = run.result
        }
      }
    }
    const missed = missedFaults(findings, inventory.faults)
    return {
      inventory: {
        ...DETECT_INVENTORY,
        transactions: inventory.transactions,
        generatedMs: inventory.generatedMs && round(inventory.generatedMs, 0),
      },
      reps: DETECT_REPS,
      detectMs: detectMs.map((ms) => round(ms)),
      bareMs: bareMs.map((ms) => round(ms)),
      detectMedianMs: round(median(detectMs)),
      bareMedianMs: round(median(bareMs)),
      ratio: round(median(detectMs) / median(bareMs), 3),
      findings: findings.length,
      faults: inventory.faults.length,
      faultsFound: inventory.faults.length - missed.length,
      missed: missed.slice(0, 10).map((fault) => `${fault.rule}:${fault.entity}`),
    }
  } finally {
    backend.close()
  }
}

/** The dry-run audit writes only to its sandbox, so the cached inventory stays as generated. */
async function benchAudit(inventory) {
  const backend = SqliteInventory.open(inventory.path)
  try {
    await backend.detect()
    const detection = await timed(() => backend.detect())
    const run = await dryRunAudit(backend, 'bench')
    const report = run.report
    const seconds = run.ms / 1000
    const missed = missedFaults(
      report.outcomes.map((outcome) => ({id: outcome.findingId})),
      inventory.faults,
    )
    return {
      inventory: {
        ...AUDIT_INVENTORY,
        transactions: inventory.transactions,
        generatedMs: inventory.generatedMs && round(inventory.generatedMs, 0),
      },
      detectMs: round(detection.ms),
      auditMs: round(run.ms),
      findings: report.findingsDetected,
      audited: report.outcomes.length,
      findingsPerSecond: round(report.outcomes.length / seconds, 0),
      msPerFinding: round(run.ms / report.outcomes.length, 3),
      summary: report.summary,
      faultsAudited: inventory.faults.length - missed.length,
      faults: inventory.faults.length,
    }
  } finally {
    backend.close()
  }
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

/**
 * The floor under any write unit on this storage: BEGIN IMMEDIATE, one one-row UPDATE, COMMIT,
 * on the same file, timed right after the audit (its fsyncs are what most of a unit's hold is).
 */
function trivialWriteUnits(backend) {
  const times = []
  for (let rep = 0; rep < 300; rep++) {
    const start = performance.now()
    backend.db.exec('BEGIN IMMEDIATE')
    backend.db.run(`UPDATE invagent_meta SET value = value WHERE key = 'clock'`)
    backend.db.run(`INSERT OR REPLACE INTO invagent_meta (key, value) VALUES ('bench_probe', ?)`, String(rep))
    backend.db.exec('COMMIT')
    times.push(performance.now() - start)
  }
  return {p50Ms: round(percentile(times, 50), 2), p99Ms: round(percentile(times, 99), 2)}
}

/**
 * The apply-mode audit on a copy of the audit inventory: how long each finding's apply unit holds
 * the inventory's write lock (BEGIN IMMEDIATE to COMMIT, the fsync of the commit included). The
 * write cap is lifted so that every fixable fault is applied in one run.
 */
async function benchApply(inventory) {
  const copy = join(OUT, `apply-${process.pid}.db`)
  const state = join(OUT, `apply-${process.pid}-state.db`)
  copyFileSync(inventory.path, copy)
  const backend = SqliteInventory.open(copy)
  const store = SqliteStateStore.open(state)
  const audit = AuditLog.create(join(OUT, 'logs'), 'bench-apply')
  try {
    const run = await timed(() =>
      runAudit({
        backend,
        engine: new RulesEngine(),
        log: audit,
        dryRun: false,
        runId: 'bench-apply',
        state: store,
        policy: {...DEFAULT_POLICY, maxWritesPerRun: 1_000_000},
      }),
    )
    const holds = run.result.outcomes.map((outcome) => outcome.holdMs).filter((ms) => ms !== null)
    const work = run.result.outcomes.map((outcome) => outcome.holdWorkMs).filter((ms) => ms !== null)
    const floor = trivialWriteUnits(backend)
    return {
      holdWorkP50Ms: round(percentile(work, 50), 2),
      holdWorkP99Ms: round(percentile(work, 99), 2),
      trivialUnitP50Ms: floor.p50Ms,
      trivialUnitP99Ms: floor.p99Ms,
      audited: run.result.outcomes.length,
      auditMs: round(run.ms),
      applyUnits: holds.length,
      holdP50Ms: round(percentile(holds, 50), 2),
      holdP99Ms: round(percentile(holds, 99), 2),
      holdMaxMs: round(Math.max(0, ...holds), 2),
      summary: run.result.summary,
    }
  } finally {
    audit.close()
    rmSync(audit.file, {force: true})
    store.close()
    backend.close()
    for (const file of [copy, state, `${state}-wal`, `${state}-shm`]) rmSync(file, {force: true})
  }
}

/** Each start is a fresh process; the bare `node -e 0` start-up interleaves with it as the floor. */
function benchStartup() {
  const spawnMs = (args) => {
    const start = performance.now()
    const child = spawnSync(process.execPath, args, {cwd: ROOT, encoding: 'utf8'})
    const ms = performance.now() - start
    if (child.status !== 0) throw new Error(`node ${args.join(' ')} exited with ${child.status}: ${child.stderr}`)
    return {ms, stdout: child.stdout.trim()}
  }
  spawnMs(['bin/run.js', '--version'])
  const versionMs = []
  const nodeMs = []
  let version = ''
  for (let rep = 0; rep < STARTUP_REPS; rep++) {
    const run = spawnMs(['bin/run.js', '--version'])
    versionMs.push(run.ms)
    version = run.stdout
    nodeMs.push(spawnMs(['-e', '0']).ms)
  }
  return {
    reps: STARTUP_REPS,
    output: version,
    versionMedianMs: round(median(versionMs)),
    versionMinMs: round(Math.min(...versionMs)),
    nodeMedianMs: round(median(nodeMs)),
    nodeMinMs: round(Math.min(...nodeMs)),
    ratio: round(median(versionMs) / median(nodeMs), 2),
    versionMs: versionMs.map((ms) => round(ms)),
    nodeMs: nodeMs.map((ms) => round(ms)),
  }
}

async function main() {
  const auditInventory = await cachedInventory(AUDIT_INVENTORY)
  log('timing the dry-run audit ...')
  const audit = await benchAudit(auditInventory)
  log('timing the apply-mode audit (write hold per finding) ...')
  const apply = await benchApply(auditInventory)
  // BENCH_ONLY=audit: the two audit measures alone, without the 100,000-part detection inventory.
  if (process.env.BENCH_ONLY === 'audit') {
    const results = {at: new Date().toISOString(), targets: TARGETS, audit, apply}
    console.log(
      `dry-run audit, rules engine: ${audit.findingsPerSecond} findings/s (target ` +
        `>= ${TARGETS.findingsPerSecond}); ${audit.audited} findings in ${audit.auditMs} ms`,
    )
    console.log(
      `apply-mode audit: write hold per finding p50 ${apply.holdP50Ms} ms, p99 ${apply.holdP99Ms} ms, ` +
        `max ${apply.holdMaxMs} ms over ${apply.applyUnits} apply units (target p99 <= ${TARGETS.holdP99Ms} ms)`,
    )
    console.log(
      `  of which before the commit: p50 ${apply.holdWorkP50Ms} ms, p99 ${apply.holdWorkP99Ms} ms; a ` +
        `trivial write unit on the same file: p50 ${apply.trivialUnitP50Ms} ms, ` +
        `p99 ${apply.trivialUnitP99Ms} ms`,
    )
    console.log(JSON.stringify(results, null, 2))
    return
  }
  const detectInventory = await cachedInventory(DETECT_INVENTORY)
  log('timing detection ...')
  const detect = await benchDetect(detectInventory)
  log('timing start-up ...')
  const startup = benchStartup()

  const pass = {
    detectOverBare: detect.ratio <= TARGETS.detectOverBare,
    faultsDetected: detect.faultsFound === detect.faults,
    faultsAudited: audit.faultsAudited === audit.faults && audit.summary.failed === 0,
    findingsPerSecond: audit.findingsPerSecond >= TARGETS.findingsPerSecond,
    holdP99Ms: apply.holdP99Ms <= TARGETS.holdP99Ms,
    versionMs: startup.versionMedianMs <= TARGETS.versionMs,
  }
  const results = {
    at: new Date().toISOString(),
    machine: machine(),
    targets: TARGETS,
    detect,
    audit,
    apply,
    startup,
    pass,
  }

  const ok = (passed) => (passed ? 'ok' : 'MISS')
  const ms = (value) => `${value.toFixed(1)} ms`
  console.log(`invagent bench: ${results.machine.cpus} cores, node ${process.version}`)
  console.log(
    `detect inventory: ${DETECT_INVENTORY.parts} parts, ${detect.inventory.transactions} ` +
      `transactions, ${detect.faults} faults` +
      (detectInventory.generatedMs === null
        ? ' (cached)'
        : ` (generated in ${(detectInventory.generatedMs / 1000).toFixed(1)} s)`),
  )
  console.log(
    `audit inventory:  ${AUDIT_INVENTORY.parts} parts, ${audit.inventory.transactions} ` +
      `transactions, ${audit.faults} faults` +
      (auditInventory.generatedMs === null
        ? ' (cached)'
        : ` (generated in ${(auditInventory.generatedMs / 1000).toFixed(1)} s)`),
  )
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
        '  findings; injected faults found',
        String(detect.findings),
        '',
        '',
        `${detect.faultsFound}/${detect.faults}`,
        ok(pass.faultsDetected),
      ],
      [
        'dry-run audit, rules engine',
        `${audit.findingsPerSecond} /s`,
        '',
        '',
        `>= ${TARGETS.findingsPerSecond} /s`,
        ok(pass.findingsPerSecond),
      ],
      [
        `  ${audit.audited} findings audited in`,
        ms(audit.auditMs),
        ms(audit.detectMs),
        `${(audit.auditMs / audit.detectMs).toFixed(1)}x`,
        `${audit.faultsAudited}/${audit.faults}`,
        ok(pass.faultsAudited),
      ],
      [
        'apply-mode audit: write hold per finding, p99',
        ms(apply.holdP99Ms),
        '',
        '',
        `<= ${TARGETS.holdP99Ms} ms`,
        ok(pass.holdP99Ms),
      ],
      [`  p50 ${apply.holdP50Ms} ms, max ${apply.holdMaxMs} ms, apply units`, String(apply.applyUnits), '', '', '', ''],
      [
        '  before the commit, p99; trivial write unit, p99',
        ms(apply.holdWorkP99Ms),
        ms(apply.trivialUnitP99Ms),
        '',
        '',
        '',
      ],
      [
        `invagent --version (median of ${STARTUP_REPS})`,
        ms(startup.versionMedianMs),
        ms(startup.nodeMedianMs),
        `${startup.ratio.toFixed(2)}x`,
        `<= ${TARGETS.versionMs} ms`,
        ok(pass.versionMs),
      ],
      [
        '  fastest',
        ms(startup.versionMinMs),
        ms(startup.nodeMinMs),
        `${(startup.versionMinMs / startup.nodeMinMs).toFixed(2)}x`,
        '',
        '',
      ],
    ]),
  )
  console.log('')
  console.log(
    'baselines, timed in this run: detect against the bare ledger aggregate (LEDGER_BALANCES_SQL) on the same',
  )
  console.log('connection; the audit against detection alone on its inventory; --version against `node -e 0`.')
  console.log(
    `audit outcomes: ${audit.summary.wouldResolve} would resolve, ${audit.summary.escalated} ` +
      `escalated, ${audit.summary.failed} failed`,
  )
  console.log('')

  saveResults('results.json', results)
  // Timings drift on a shared machine, so only a correctness failure fails the command.
  if (!pass.faultsDetected || !pass.faultsAudited) process.exitCode = 1
}

await main()
