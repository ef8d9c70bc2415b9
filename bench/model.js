// Model-engine benchmark on the tiny random-weight GGUF the tests use: generation throughput of
// the embedded engine against llama-server on the same audit, the agent's own overhead per step
// over the time spent in the model, and the share of prompt tokens served from the cache.
// A random model says nothing useful; the workload (prompt sizes, steps, grammar) is real.
//
//   npm run bench            (runs bench/run.js, then this file)
//
// Prints a table and the JSON of all results, and writes bench/out/model-results.json.

import {mkdirSync, rmSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {join} from 'node:path'

import {AuditLog} from '../dist/src/agent/audit-log.js'
import {runAudit} from '../dist/src/agent/audit.js'
import {EmbeddedEngine} from '../dist/src/engines/embedded-engine.js'
import {ServerEngine} from '../dist/src/engines/server-engine.js'
import {SqliteInventory} from '../dist/src/inventory/sqlite-backend.js'
import {findCachedLlamaBinary} from '../dist/src/llama/locate.js'
import {startLlamaServer} from '../dist/src/llama/serve.js'
import {initInventory} from '../dist/src/simulate/generate.js'
import {loadTinyGgufWriter} from '../scripts/tiny-gguf-writer.mjs'
import {log, OUT, saveResults} from './common.js'

const TARGETS = {embeddedOverServer: 0.8, overheadShare: 0.1, cacheShare: 0.85}
const AUDIT = {maxFindings: 4, maxSteps: 4}
const CONTEXT = 16384
const MAX_TOKENS = 32

/** The GGUF writer lives with the tests (TypeScript); it is compiled once into bench/out. */
async function writeModel(path) {
  const writeTinyGguf = await loadTinyGgufWriter(join(OUT, 'helpers-build'))
  return writeTinyGguf(path, {contextLength: CONTEXT})
}

async function measure(engine, db, label) {
  const backend = SqliteInventory.open(db)
  const logFile = AuditLog.create(join(OUT, 'logs'), label)
  const started = performance.now()
  const report = await runAudit({backend, engine, log: logFile, dryRun: true, ...AUDIT})
  const wallMs = performance.now() - started
  logFile.close()
  rmSync(logFile.file, {force: true})
  backend.close()
  const totals = engine.totals
  return {
    steps: totals.steps,
    completionTokens: totals.completionTokens,
    promptTokens: totals.promptTokens,
    cachedPromptTokens: totals.cachedPromptTokens,
    modelMs: Math.round(totals.generationMs),
    wallMs: Math.round(wallMs),
    tokensPerSecond: totals.completionTokens / (totals.generationMs / 1000),
    overheadShare: (wallMs - totals.generationMs) / totals.generationMs,
    cacheShare: totals.cachedPromptTokens / totals.promptTokens,
    failed: report.summary.failed,
  }
}

async function main() {
  mkdirSync(OUT, {recursive: true})
  const model = join(OUT, 'tiny-16k.gguf')
  const info = await writeModel(model)
  const db = join(OUT, 'model-bench.db')
  initInventory({path: db, parts: 60, days: 10, faults: 8, seed: 7, force: true})
  const threads = availableParallelism()
  log(`model: ${info.parameterCount} parameters, ${info.vocabularySize} tokens, context ${CONTEXT}; ${threads} threads`)

  log('embedded engine ...')
  const embedded = await EmbeddedEngine.load({
    modelPath: model,
    threads,
    contextSize: CONTEXT,
    maxTokens: MAX_TOKENS,
    seed: 1,
  })
  const embeddedResult = await measure(embedded, db, 'bench-embedded')
  await embedded.close()

  let serverResult
  const binary = process.env.INVAGENT_LLAMA_SERVER ?? (await findCachedLlamaBinary('llama-server'))
  if (binary) {
    log('llama-server ...')
    const server = await startLlamaServer({
      model,
      llamaServer: binary,
      port: 0,
      ctxSize: CONTEXT,
      threads,
      parallel: 1,
      restart: false,
    })
    try {
      const engine = await ServerEngine.connect({url: server.url, maxTokens: MAX_TOKENS, seed: 1})
      serverResult = await measure(engine, db, 'bench-server')
    } finally {
      await server.stop()
    }
  } else {
    log('llama-server not found: run `invagent llama build` to include it')
  }

  const ratio = serverResult ? embeddedResult.tokensPerSecond / serverResult.tokensPerSecond : undefined
  const fmt = (value, digits = 1) => (value === undefined ? '—' : value.toFixed(digits))
  const rows = [
    [
      'generation, embedded',
      `${fmt(embeddedResult.tokensPerSecond)} tok/s`,
      serverResult ? `${fmt(serverResult.tokensPerSecond)} tok/s` : '—',
      ratio === undefined ? '—' : `${fmt(ratio, 2)}x`,
      `>= ${TARGETS.embeddedOverServer}x`,
    ],
    [
      'agent overhead per step, embedded',
      `${fmt(embeddedResult.overheadShare * 100)} %`,
      `${embeddedResult.modelMs} ms model`,
      '',
      `<= ${TARGETS.overheadShare * 100} %`,
    ],
    [
      'agent overhead per step, server',
      serverResult ? `${fmt(serverResult.overheadShare * 100)} %` : '—',
      serverResult ? `${serverResult.modelMs} ms model` : '',
      '',
      `<= ${TARGETS.overheadShare * 100} %`,
    ],
    [
      'prompt tokens from cache, embedded',
      `${fmt(embeddedResult.cacheShare * 100)} %`,
      `${embeddedResult.promptTokens} prompt`,
      '',
      `>= ${TARGETS.cacheShare * 100} %`,
    ],
    [
      'prompt tokens from cache, server',
      serverResult ? `${fmt(serverResult.cacheShare * 100)} %` : '—',
      serverResult ? `${serverResult.promptTokens} prompt` : '',
      '',
      `>= ${TARGETS.cacheShare * 100} %`,
    ],
  ]
  const widths = [0, 1, 2, 3, 4].map((column) =>
    Math.max(...[['measure', 'value', 'baseline', 'ratio', 'target'], ...rows].map((row) => row[column].length)),
  )
  const line = (row) => row.map((cell, column) => cell.padEnd(widths[column])).join('  ')
  console.log(
    `invagent model bench: tiny random GGUF, ${AUDIT.maxFindings} findings × up to ${AUDIT.maxSteps} ` +
      `steps, ${MAX_TOKENS} tokens per step, ${threads} threads`,
  )
  console.log(line(['measure', 'value', 'baseline', 'ratio', 'target']))
  console.log(widths.map((width) => '-'.repeat(width)).join('  '))
  for (const row of rows) console.log(line(row))
  const results = {
    at: new Date().toISOString(),
    model: info,
    targets: TARGETS,
    embedded: embeddedResult,
    server: serverResult ?? null,
    embeddedOverServer: ratio ?? null,
  }
  saveResults('model-results.json', results)
  if (embeddedResult.failed > 0 || (serverResult && serverResult.failed > 0)) process.exitCode = 1
}

await main()
