// Generated inventories for the benchmarks, cached under bench/out. The key holds the generation
// parameters and a digest of the compiled generator and schema: a changed generator must not be
// benchmarked against data it would no longer produce. Same naming as bench/run.js, so the two share files.

import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {SqliteInventory} from '../dist/src/inventory/sqlite-backend.js'
import {initInventory} from '../dist/src/simulate/generate.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const OUT = join(ROOT, 'bench', 'out')

export function generatorDigest() {
  const src = join(ROOT, 'dist', 'src')
  const simulator = readdirSync(join(src, 'simulate'))
    .filter((name) => name.endsWith('.js'))
    .sort()
    .map((name) => `simulate/${name}`)
  const hash = createHash('sha256')
  for (const file of [
    ...simulator,
    'util/random.js',
    'inventory/schema.js',
    'inventory/units.js',
    'tools/catalogue.js',
  ])
    hash.update(readFileSync(join(src, file)))
  return hash.digest('hex').slice(0, 10)
}

/** The cached inventory for these parameters, generated when missing. */
export function cachedInventory(params, log = () => {}) {
  mkdirSync(OUT, {recursive: true})
  const stem = `inventory-p${params.parts}-d${params.days}-f${params.faults}-s${params.seed}-`
  const path = join(OUT, `${stem}${generatorDigest()}.db`)
  if (existsSync(path) && existsSync(`${path}.faults.json`)) {
    const backend = SqliteInventory.open(path, {readOnly: true})
    const transactions = backend.db.get('SELECT count(*) AS n FROM transactions').n
    backend.close()
    return {path, transactions, generatedMs: null}
  }
  for (const stale of readdirSync(OUT).filter((name) => name.startsWith(stem))) rmSync(join(OUT, stale), {force: true})
  log(`generating ${path} ...`)
  const started = performance.now()
  const result = initInventory({path, ...params, force: true})
  return {path, transactions: result.transactions, generatedMs: performance.now() - started}
}
