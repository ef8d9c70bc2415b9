import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {AuditLog} from '../../src/agent/audit-log.js'
import {runAudit} from '../../src/agent/audit.js'
import {exportDataset} from '../../src/dataset/export.js'
import {EVAL_ID_BASE, generateDataset, SANDBOX_INVENTORY} from '../../src/dataset/generate.js'
import {exampleMessages} from '../../src/dataset/render-example.js'
import type {PlaybookExample} from '../../src/dataset/schema.js'
import {validateDatasetFiles} from '../../src/dataset/validate.js'
import type {Engine} from '../../src/engines/engine.js'
import {ModelEngineSession, type Completer} from '../../src/engines/model-session.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {stepText, type ChatMessage} from '../../src/prompt/render.js'
import {initInventory} from '../../src/simulate/generate.js'
import {ROOT_CAUSES} from '../../src/tools/catalogue.js'
import {temporaryDirectory} from '../helpers/cli.js'

const readExamples = (file: string): PlaybookExample[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))

function messagesOfEvents(examples: PlaybookExample[]): Set<string> {
  const messages = new Set<string>()
  for (const example of examples) {
    for (const step of example.trajectory) {
      if (step.action.tool !== 'get_integration_events' || !step.observation.ok) continue
      for (const event of (step.observation.result as {events: Array<{message: string}>}).events)
        messages.add(event.message.replace(/[A-Z]+-[\w/.-]+|\d+/g, '#'))
    }
  }
  return messages
}

describe('dataset generate → validate → export', () => {
  it('generates a deterministic, leak-free split that validates clean and covers every root cause', async () => {
    const directory = temporaryDirectory()
    const options = {
      count: 52,
      evalCount: 26,
      seed: 5,
      out: join(directory, 'train.jsonl'),
      evalOut: join(directory, 'eval.jsonl'),
    }
    const result = await generateDataset(options)
    expect(result.train.examples).toBe(52)
    expect(result.eval.examples).toBe(26)
    const report = await validateDatasetFiles([options.out, options.evalOut], {evalFiles: [options.evalOut]})
    expect(report.problems).toEqual([])
    expect(report.ok).toBe(true)

    const train = readExamples(options.out)
    const evaluation = readExamples(options.evalOut)
    const covered = new Set(train.map((example) => `${example.meta.rule}/${example.meta.rootCause}`))
    for (const entry of ROOT_CAUSES)
      expect(covered, `${entry.rule}/${entry.rootCause}`).toContain(`${entry.rule}/${entry.rootCause}`)
    expect(train.some((example) => example.final.outcome === 'escalated')).toBe(true)
    // Held out by construction: eval entity ids are numbered from EVAL_ID_BASE, their messages use other phrasings.
    for (const example of evaluation)
      expect(Number(example.input.finding.entity.replace(/\D/g, ''))).toBeGreaterThan(EVAL_ID_BASE)
    for (const example of train)
      expect(Number(example.input.finding.entity.replace(/\D/g, ''))).toBeLessThan(EVAL_ID_BASE)
    const trainShapes = messagesOfEvents(train)
    const evalShapes = messagesOfEvents(evaluation)
    expect(evalShapes.size).toBeGreaterThan(3)
    expect([...evalShapes].filter((shape) => trainShapes.has(shape) && !/^(?:posted|info)/i.test(shape))).toEqual([])

    const again = await generateDataset({
      ...options,
      out: join(directory, 'train2.jsonl'),
      evalOut: join(directory, 'eval2.jsonl'),
    })
    expect(again.train.examples).toBe(52)
    expect(readFileSync(join(directory, 'train2.jsonl'), 'utf8')).toBe(readFileSync(options.out, 'utf8'))
    expect(readFileSync(join(directory, 'eval2.jsonl'), 'utf8')).toBe(readFileSync(options.evalOut, 'utf8'))
  })

  it('the shipped datasets are exactly what the documented command generates', async () => {
    const directory = temporaryDirectory()
    // datasets/README.md: invagent dataset generate --count 312 --eval-count 104 --seed 2026
    await generateDataset({
      count: 312,
      evalCount: 104,
      seed: 2026,
      out: join(directory, 'playbook.jsonl'),
      evalOut: join(directory, 'eval.jsonl'),
    })
    expect(
      readFileSync(join(directory, 'playbook.jsonl'), 'utf8'),
      'regenerate datasets/ with the command in datasets/README.md',
    ).toBe(readFileSync('datasets/playbook.jsonl', 'utf8'))
    expect(readFileSync(join(directory, 'eval.jsonl'), 'utf8')).toBe(readFileSync('datasets/eval.jsonl', 'utf8'))
  })

  it('exports exactly the messages the model engine is prompted with when it replays the example in the audit loop', async () => {
    const [example] = readExamples('datasets/playbook.jsonl').filter(
      (candidate) => candidate.trajectory.length >= 4 && candidate.final.outcome === 'resolved',
    )
    const directory = temporaryDirectory()
    const db = join(directory, 'sandbox.db')
    initInventory({
      path: db,
      ...SANDBOX_INVENTORY,
      seed: (example.input.context as {sandboxSeed: number}).sandboxSeed,
      phrasings: 'train',
    })

    // A model that answers with the example's steps; the loop supplies the real observations.
    const prompts: ChatMessage[][] = []
    const replay: Completer = {
      async complete(messages) {
        prompts.push(messages)
        const index = messages.filter((message) => message.role === 'assistant').length
        const step = example.trajectory[index]
        return {
          text: stepText({thought: step.thought, tool: step.action.tool, args: step.action.args}),
          usage: {promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0},
          hitTokenLimit: false,
        }
      },
    }
    const escalateOthers: Completer = {
      async complete() {
        return {
          text: JSON.stringify({
            thought: 'not this one',
            tool: 'escalate',
            args: {root_cause: 'unknown', reason: 'test', summary: 'other finding'},
          }),
          usage: {promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0},
          hitTokenLimit: false,
        }
      },
    }
    const engine: Engine = {
      name: 'replay',
      start: (finding) =>
        new ModelEngineSession(finding, finding.id === example.input.finding.id ? replay : escalateOthers),
    }
    const backend = SqliteInventory.open(db)
    const log = AuditLog.create(join(directory, 'logs'), 'replay')
    const report = await runAudit({backend, engine, log, dryRun: true})
    log.close()
    backend.close()
    expect(report.outcomes.find((outcome) => outcome.findingId === example.input.finding.id)?.outcome).toBe(
      'would_resolve',
    )
    expect(prompts).toHaveLength(example.trajectory.length)
    const last = example.trajectory.at(-1)!
    const inference = [
      ...prompts.at(-1)!,
      {role: 'assistant', content: stepText({thought: last.thought, tool: last.action.tool, args: last.action.args})},
    ]
    expect(exampleMessages(example)).toEqual(inference)

    const out = join(directory, 'chat.jsonl')
    const exported = await exportDataset({input: 'datasets/playbook.jsonl', out})
    expect(exported.examples).toBe(readExamples('datasets/playbook.jsonl').length)
    const conversation = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
      .find((line) => line.id === example.id)
    expect(conversation.messages).toEqual(inference)
  })

  it('export refuses a file with an invalid example and writes nothing', async () => {
    const directory = temporaryDirectory()
    const out = join(directory, 'chat.jsonl')
    await expect(exportDataset({input: 'test/fixtures/dataset/tools.jsonl', out})).rejects.toThrow(
      /6 example\(s\) cannot be exported/,
    )
    expect(() => readFileSync(out)).toThrow()
  })
})
