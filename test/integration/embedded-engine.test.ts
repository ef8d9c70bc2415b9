import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {AuditLog, verifyLogFile} from '../../src/agent/audit-log.js'
import {runAudit} from '../../src/agent/audit.js'
import {EmbeddedEngine} from '../../src/engines/embedded-engine.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {renderMessages} from '../../src/prompt/render.js'
import {initInventory} from '../../src/simulate/generate.js'
import {temporaryDirectory, sha256OfFile} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/*
 * The embedded engine on a tiny random-weight GGUF: real loading, real chat template, real
 * grammar-constrained decoding, real audits. A random model resolves little; what must hold is
 * that every step it proposes is parseable JSON of the step grammar, the prefix is reused, and
 * it never writes outside a finding's scope or leaves a broken invariant.
 */
describe('embedded engine on a tiny random GGUF', () => {
  let directory: string
  let engine: EmbeddedEngine

  beforeAll(async () => {
    directory = temporaryDirectory()
    const model = join(directory, 'tiny.gguf')
    // A byte-level vocabulary spends a token per character: the system prompt alone is thousands.
    writeTinyGguf(model, {contextLength: 16384})
    // One thread: the other test worker holds the second core, and two threads wait on each other.
    engine = await EmbeddedEngine.load({modelPath: model, threads: 1, maxTokens: 32, contextSize: 16384, seed: 1})
  })

  afterAll(async () => {
    await engine?.close()
  })

  it('produces grammar-valid steps and reuses the prompt prefix across the steps of a finding', async () => {
    const init = initInventory({path: join(directory, 'inv.db'), parts: 60, days: 10, faults: 8, seed: 3})
    const before = sha256OfFile(init.db)
    const backend = SqliteInventory.open(init.db)
    const log = AuditLog.create(join(directory, 'logs'), 'embedded')
    const report = await runAudit({backend, engine, log, dryRun: true, maxFindings: 2, maxSteps: 4})
    log.close()
    backend.close()
    expect(sha256OfFile(init.db)).toBe(before)
    expect(report.outcomes.map((outcome) => outcome.summary).filter((summary) => summary.includes('failed'))).toEqual(
      [],
    )
    expect(report.summary.failed).toBe(0)
    expect(report.outcomes.length).toBe(2)
    for (const outcome of report.outcomes) {
      expect(['would_resolve', 'escalated']).toContain(outcome.outcome)
      expect(outcome.usage.promptTokens).toBeGreaterThan(0)
      // A random model rambles inside its thought until the token limit: each such step is
      // returned to it as invalid, and the finding is escalated, never crashed.
      expect(outcome.invalidSteps).toBeGreaterThan(0)
    }
    const steps = report.outcomes.reduce((sum, outcome) => sum + outcome.steps, 0)
    const usage = report.outcomes.reduce(
      (sum, outcome) => ({
        prompt: sum.prompt + outcome.usage.promptTokens,
        cached: sum.cached + outcome.usage.cachedPromptTokens,
      }),
      {prompt: 0, cached: 0},
    )
    expect(steps).toBeGreaterThan(2)
    // Every raw output was decoded under the step grammar: it opens as a step does.
    const raws = readFileSync(log.file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
      .filter((line) => line.event === 'step-proposed')
      .map((line) => line.data.raw as string)
    for (const raw of raws) expect(raw.startsWith('{"thought": "')).toBe(true)
    // The system prompt is evaluated once per run; later steps reuse nearly the whole prompt.
    expect(usage.cached / usage.prompt).toBeGreaterThan(0.8)
    expect(verifyLogFile(log.file).ok).toBe(true)
  })

  it('fails loudly instead of truncating a prompt that does not fit', async () => {
    const small = await EmbeddedEngine.load({
      modelPath: join(directory, 'tiny.gguf'),
      threads: 1,
      contextSize: 512,
      maxTokens: 64,
    })
    try {
      const messages = renderMessages(
        {id: 'x', rule: 'negative_on_hand', entity: 'P-1', severity: 'high', evidence: {}},
        [],
      )
      await expect(small.complete(messages)).rejects.toThrow(/above the context size of 512/)
    } finally {
      await small.close()
    }
  })
})
