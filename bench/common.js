// What the benchmarks share: where they write, the small statistics and timing helpers, the machine
// they ran on, the generated inventories they measure (cached under bench/out), a dry-run audit with
// the rules engine, and how results are saved.

import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {availableParallelism, cpus} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {AuditLog} from '../dist/src/agent/audit-log.js'
import {runAudit} from '../dist/src/agent/audit.js'
import {RulesEngine} from '../dist/src/engines/rules-engine.js'
import {SqliteInventory} from '../dist/src/inventory/sqlite-backend.js'
import {initInventory} from '../dist/src/simulate/generate.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const OUT = join(ROOT, 'bench', 'out')

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

export const round = (value, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits

export const log = (line) => process.stderr.write(`${line}\n`)

export async function timed(work) {
  const start = performance.now()
  const result = await work()
  return {ms: performance.now() - start, result}
}

export function machine() {
  return {
    cpus: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  }
}

/** Writes the results as JSON to bench/out/<file> and prints them after the table. */
export function saveResults(file, results) {
  mkdirSync(OUT, {recursive: true})
  const json = JSON.stringify(results, null, 2)
  writeFileSync(join(OUT, file), `${json}\n`)
  console.log(json)
}

/**
 * A digest of the compiled generator and schema: a changed generator must not be benchmarked
 * against data it would no longer produce.
 */
export function generatorDigest() {
  const src = join(ROOT, 'dist', 'src')
  const folder = (name) =>
    readdirSync(join(src, name))
      .filter((file) => file.endsWith('.js'))
      .sort()
      .map((file) => `${name}/${file}`)
  const hash = createHash('sha256')
  // The simulator, the schema it writes and the rules whose faults it injects.
  for (const file of [
    ...folder('simulate'),
    ...folder('detect/rules'),
    'detect/registry.js',
    'util/random.js',
    'inventory/schema.js',
    'inventory/schema-columns.js',
    'inventory/units.js',
    'tools/catalogue.js',
  ])
    hash.update(readFileSync(join(src, file)))
  return hash.digest('hex').slice(0, 10)
}

/**
 * The inventory for these generation parameters, generated when missing. Generating a million
 * transactions takes a while, so inventories are cached under bench/out; the file name holds the
 * parameters and the generator's digest.
 */
export async function cachedInventory(params) {
  mkdirSync(OUT, {recursive: true})
  const stem = `inventory-p${params.parts}-d${params.days}-f${params.faults}-s${params.seed}-`
  const path = join(OUT, `${stem}${generatorDigest()}.db`)
  const faultsFile = `${path}.faults.json`
  if (existsSync(path) && existsSync(faultsFile)) {
    const backend = SqliteInventory.open(path, {readOnly: true})
    const transactions = backend.db.get('SELECT count(*) AS n FROM transactions').n
    backend.close()
    return {path, transactions, faults: JSON.parse(readFileSync(faultsFile, 'utf8')).faults, generatedMs: null}
  }
  // Inventories of an older generator are hundreds of megabytes that nothing will read again.
  for (const stale of readdirSync(OUT).filter((name) => name.startsWith(stem))) rmSync(join(OUT, stale), {force: true})
  log(`generating ${path} ...`)
  const {ms, result} = await timed(() => initInventory({path, ...params, force: true}))
  log(`  ${result.transactions} transactions in ${(ms / 1000).toFixed(1)} s`)
  return {path, transactions: result.transactions, faults: result.faults, generatedMs: ms}
}

/** A dry-run audit with the rules engine; its log goes to bench/out/logs and is removed afterwards. */
export async function dryRunAudit(backend, runId) {
  const audit = AuditLog.create(join(OUT, 'logs'), runId)
  try {
    const run = await timed(() => runAudit({backend, engine: new RulesEngine(), log: audit, dryRun: true, runId}))
    return {ms: run.ms, report: run.result}
  } finally {
    audit.close()
    rmSync(audit.file, {force: true})
  }
}
