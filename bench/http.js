// HTTP backend benchmark: the first full mirror of a large inventory through the REST contract
// (rows/s), and a dry-run audit (rules engine) over HTTP against the same audit on the SQLite file
// the server serves. The server is `invagent inventory serve` in its own process, on loopback.
//
//   npm run bench            (builds first; this file runs last)
//   node bench/http.js       (after `npm run build`)
//
// Prints a table and the JSON of all results, and writes that JSON to bench/out/http.json.

import {spawn} from 'node:child_process'
import {copyFileSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

import {HttpInventory} from '../dist/src/inventory/http/http-backend.js'
import {SqliteInventory} from '../dist/src/inventory/sqlite-backend.js'
import {cachedInventory, dryRunAudit, log, machine, OUT, ROOT, round, saveResults, timed} from './common.js'
import {table} from './table.js'

const INVENTORY = {parts: 100_000, days: 30, faults: 500, seed: 1}
const PAGE_ROWS = 5000

/** Starts the reference server on a free port; resolves once it prints its ready line. */
function startServer(path) {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'run.js'), 'inventory', 'serve', '--inventory', path, '--port', '0', '--json'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {...process.env, INVAGENT_TOKEN: ''},
    },
  )
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk.toString()).slice(-4000))
  return new Promise((resolve, reject) => {
    createInterface({input: child.stdout}).on('line', (line) => {
      if (line.includes('"ready"')) resolve({child, ready: JSON.parse(line)})
    })
    child.once('exit', (code) => reject(new Error(`inventory serve exited (${code}) before it was ready: ${stderr}`)))
  })
}

async function stopServer(child) {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

function outcomesOf(report) {
  return report.outcomes.map((outcome) => `${outcome.findingId}:${outcome.outcome}:${outcome.rootCause}`)
}

async function main() {
  const inventory = await cachedInventory(INVENTORY)
  // Serving adds change tracking to the file, so the server gets its own copy.
  const served = join(OUT, 'http-served.db')
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${served}${suffix}`, {force: true})
  copyFileSync(inventory.path, served)
  const mirrorPath = join(OUT, 'http-mirror', 'mirror.db')
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${mirrorPath}${suffix}`, {force: true})

  log('starting inventory serve (adds change tracking to the copy) ...')
  const start = await timed(() => startServer(served))
  const {child, ready} = start.result
  let results
  try {
    const http = await HttpInventory.open({baseUrl: ready.url, mirrorPath, pageRows: PAGE_ROWS, timeoutMs: 60_000})
    try {
      log('first full mirror ...')
      const full = await timed(() => http.sync())
      const rows = Object.values(full.result.rows).reduce((sum, count) => sum + count, 0)
      const idleMs = []
      let idleRequests = 0
      for (let rep = 0; rep < 6; rep++) {
        const idle = await timed(() => http.sync())
        // The first one right after a million-row load also pays for its garbage collection.
        if (rep > 0) idleMs.push(idle.ms)
        idleRequests = idle.result.requests
      }

      log('dry-run audit on the SQLite file ...')
      const direct = SqliteInventory.open(served)
      let sqlite
      try {
        await direct.detect()
        sqlite = await dryRunAudit(direct, 'http-bench-sqlite')
      } finally {
        direct.close()
      }
      log('dry-run audit over HTTP ...')
      const requestsBefore = http.client.requests
      const overHttp = await dryRunAudit(http, 'http-bench-http')
      const requests = http.client.requests - requestsBefore
      const sameOutcomes = JSON.stringify(outcomesOf(overHttp.report)) === JSON.stringify(outcomesOf(sqlite.report))

      results = {
        at: new Date().toISOString(),
        machine: machine(),
        inventory: {
          ...INVENTORY,
          transactions: inventory.transactions,
          generatedMs: inventory.generatedMs && round(inventory.generatedMs, 0),
        },
        serveStartMs: round(start.ms, 0),
        fullMirror: {
          ms: round(full.ms, 0),
          rows,
          rowsPerSecond: round(rows / (full.ms / 1000), 0),
          requests: full.result.requests,
          pageRows: PAGE_ROWS,
          perTable: full.result.rows,
        },
        idleResync: {medianMs: round(idleMs.sort((a, b) => a - b)[idleMs.length >> 1], 1), requests: idleRequests},
        audit: {
          findings: sqlite.report.findingsDetected,
          sqliteMs: round(sqlite.ms, 0),
          httpMs: round(overHttp.ms, 0),
          ratio: round(overHttp.ms / sqlite.ms, 2),
          httpRequests: requests,
          msPerFindingSqlite: round(sqlite.ms / sqlite.report.outcomes.length, 2),
          msPerFindingHttp: round(overHttp.ms / overHttp.report.outcomes.length, 2),
          summarySqlite: sqlite.report.summary,
          summaryHttp: overHttp.report.summary,
          sameOutcomes,
        },
      }
    } finally {
      http.close()
    }
  } finally {
    await stopServer(child)
  }

  const {fullMirror, audit} = results
  console.log(`invagent HTTP bench: ${results.machine.cpus} cores, node ${process.version}`)
  console.log(
    `inventory: ${INVENTORY.parts} parts, ${inventory.transactions} transactions, ${INVENTORY.faults} faults` +
      (inventory.generatedMs === null ? ' (cached)' : ` (generated in ${(inventory.generatedMs / 1000).toFixed(1)} s)`),
  )
  console.log('')
  console.log(
    table([
      ['measure', 'value', 'baseline', 'ratio'],
      ['inventory serve start (adds change tracking)', `${(results.serveStartMs / 1000).toFixed(1)} s`, '', ''],
      ['first full mirror', `${fullMirror.rowsPerSecond} rows/s`, '', ''],
      [
        `  ${fullMirror.rows} rows in ${fullMirror.requests} requests`,
        `${(fullMirror.ms / 1000).toFixed(1)} s`,
        '',
        '',
      ],
      ['re-sync, nothing changed (median of 5)', `${results.idleResync.medianMs} ms`, '', ''],
      [
        `dry-run audit, rules engine: HTTP vs SQLite file`,
        `${(audit.httpMs / 1000).toFixed(2)} s`,
        `${(audit.sqliteMs / 1000).toFixed(2)} s`,
        `${audit.ratio.toFixed(2)}x`,
      ],
      [
        `  per finding (${audit.findings} findings)`,
        `${audit.msPerFindingHttp} ms`,
        `${audit.msPerFindingSqlite} ms`,
        '',
      ],
      ['  same outcomes on both', audit.sameOutcomes ? 'yes' : 'NO', '', ''],
    ]),
  )
  console.log('')
  console.log('The audit over HTTP starts with a warm mirror (the full mirror above is timed separately); both audits')
  console.log('run in this process, the server in its own. Ratio: HTTP time over SQLite time, one run each.')
  console.log('')
  saveResults('http.json', results)
  if (!audit.sameOutcomes) process.exitCode = 1
}

await main()
