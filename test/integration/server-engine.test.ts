import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {AuditLog, verifyLogFile} from '../../src/agent/audit-log.js'
import {runAudit} from '../../src/agent/audit.js'
import {RulesEngine} from '../../src/engines/rules-engine.js'
import {ServerEngine} from '../../src/engines/server-engine.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {findCachedLlamaBinary} from '../../src/llama/locate.js'
import {startLlamaServer, type LlamaServer} from '../../src/llama/serve.js'
import {initInventory} from '../../src/simulate/generate.js'
import {sha256OfFile, temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/*
 * The server engine against a real llama-server built from node-llama-cpp's llama.cpp source
 * (`invagent llama build`, which .ci/run runs first) serving the tiny random-weight GGUF.
 */
const binary = process.env.INVAGENT_LLAMA_SERVER ?? (await findCachedLlamaBinary('llama-server'))

describe.skipIf(!binary)('server engine on llama-server', () => {
  let directory: string
  let model: string

  beforeAll(() => {
    directory = temporaryDirectory()
    model = join(directory, 'tiny.gguf')
    writeTinyGguf(model, {contextLength: 16384})
  })

  async function serve(): Promise<LlamaServer> {
    return startLlamaServer({
      model,
      llamaServer: binary,
      port: 0,
      ctxSize: 16384,
      threads: 1,
      parallel: 1,
      restart: false,
    })
  }

  describe('a full audit', () => {
    let server: LlamaServer
    beforeAll(async () => {
      server = await serve()
    })
    afterAll(async () => {
      await server?.stop()
    })

    it('decodes every step under the grammar and reuses the cached prompt', async () => {
      const init = initInventory({path: join(directory, 'a.db'), parts: 60, days: 10, faults: 8, seed: 5})
      const before = sha256OfFile(init.db)
      const engine = await ServerEngine.connect({url: server.url, maxTokens: 32, seed: 1})
      expect(engine.contextSize).toBe(16384)
      const backend = SqliteInventory.open(init.db)
      const log = AuditLog.create(join(directory, 'logs'), 'server')
      const report = await runAudit({backend, engine, log, dryRun: true, maxFindings: 2, maxSteps: 3})
      log.close()
      backend.close()
      expect(sha256OfFile(init.db)).toBe(before)
      expect(report.summary.failed).toBe(0)
      const raws = readFileSync(log.file, 'utf8')
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line))
        .filter((line) => line.event === 'step-proposed')
        .map((line) => line.data.raw as string)
      expect(raws.length).toBeGreaterThan(2)
      for (const raw of raws) expect(raw).toMatch(/^\{\s*"thought"\s*:\s*"/)
      const prompt = report.outcomes.reduce((sum, outcome) => sum + outcome.usage.promptTokens, 0)
      const cached = report.outcomes.reduce((sum, outcome) => sum + outcome.usage.cachedPromptTokens, 0)
      expect(cached / prompt).toBeGreaterThan(0.8)
      expect(verifyLogFile(log.file).ok).toBe(true)
    })
  })

  it('reports findings as failed when the server dies mid-audit, applies nothing, and the next audit picks them up', async () => {
    const server = await serve()
    const init = initInventory({path: join(directory, 'b.db'), parts: 60, days: 10, faults: 8, seed: 6})
    const before = sha256OfFile(init.db)
    const engine = await ServerEngine.connect({url: server.url, maxTokens: 16, seed: 1, timeoutMs: 20_000})
    const backend = SqliteInventory.open(init.db)
    const log = AuditLog.create(join(directory, 'logs'), 'killed')
    const report = await runAudit({
      backend,
      engine,
      log,
      dryRun: false,
      maxFindings: 4,
      maxSteps: 2,
      onOutcome: (_outcome, index) => {
        if (index === 0) process.kill(server.pid!, 'SIGKILL')
      },
    })
    log.close()
    await server.stop()
    expect(report.outcomes[0].outcome).not.toBe('failed')
    const rest = report.outcomes.slice(1)
    expect(rest.length).toBe(3)
    for (const outcome of rest) {
      expect(outcome.outcome).toBe('failed')
      expect(outcome.summary).toContain('engine unavailable')
      expect(outcome.actions).toEqual([])
    }
    expect(sha256OfFile(init.db)).toBe(before)
    expect(verifyLogFile(log.file).ok).toBe(true)

    const resumed = await runAudit({
      backend,
      engine: new RulesEngine(),
      log: AuditLog.create(join(directory, 'logs'), 'resumed'),
      dryRun: true,
    })
    backend.close()
    for (const outcome of rest) expect(resumed.outcomes.map((next) => next.findingId)).toContain(outcome.findingId)
  })

  it('fails fast with a clear error when nothing listens at the URL', async () => {
    await expect(ServerEngine.connect({url: 'http://127.0.0.1:9', maxTokens: 16})).rejects.toThrow(/unavailable/)
  })
})
