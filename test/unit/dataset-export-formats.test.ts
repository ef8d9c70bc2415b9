import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {exportDataset} from '../../src/dataset/export.js'
import type {OpenAiConversation, ShareGptConversation} from '../../src/dataset/export-formats.js'
import type {PlaybookExample} from '../../src/dataset/schema.js'
import {nativeToolsSystemPrompt, systemPrompt} from '../../src/prompt/render.js'
import {toolCatalogue} from '../../src/tools/json-schema.js'
import {temporaryDirectory} from '../helpers/cli.js'
import {writePlaybookDataset} from '../helpers/train-fixture.js'

/*
 * `dataset export --format openai | sharegpt`: the shipped playbook in the shapes TRL / axolotl and
 * LLaMA-Factory read, checked turn by turn against the examples they come from.
 */

function readLines<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as T)
}

describe('dataset export for trainers with native tool calling', () => {
  const work = temporaryDirectory('invagent-export-formats-')
  const input = writePlaybookDataset(join(work, 'playbook.jsonl'), 12)
  const examples = readLines<PlaybookExample>(input)
  const toolNames = toolCatalogue().map((tool) => tool.name)

  it('openai: assistant tool_calls with object arguments, tool turns with results, a tools array', async () => {
    const result = await exportDataset({input, out: join(work, 'openai.jsonl'), format: 'openai'})
    expect(result).toMatchObject({format: 'openai', examples: 12})
    const lines = readLines<OpenAiConversation>(join(work, 'openai.jsonl'))
    for (const [index, line] of lines.entries()) {
      const example = examples[index]
      expect(line.id).toBe(example.id)
      expect(line.tools.map((tool) => tool.function.name)).toEqual(toolNames)
      expect(line.tools.every((tool) => tool.type === 'function' && tool.function.parameters.type === 'object')).toBe(
        true,
      )
      expect(line.messages.map((message) => message.role).slice(0, 2)).toEqual(['system', 'user'])
      const assistants = line.messages.filter((message) => message.role === 'assistant')
      expect(assistants).toHaveLength(example.trajectory.length)
      assistants.forEach((message, step) => {
        expect(message.content).toBe(example.trajectory[step].thought)
        expect(message.tool_calls[0].function).toEqual({
          name: example.trajectory[step].action.tool,
          arguments: example.trajectory[step].action.args,
        })
      })
      // Each call but the last (resolve / escalate) is answered by a tool turn naming it.
      const tools = line.messages.filter((message) => message.role === 'tool')
      expect(tools).toHaveLength(example.trajectory.length - 1)
      for (const [position, message] of line.messages.entries()) {
        if (message.role !== 'tool') continue
        const call = line.messages[position - 1]
        expect(call.role).toBe('assistant')
        if (call.role === 'assistant')
          expect([message.tool_call_id, message.name]).toEqual([
            call.tool_calls[0].id,
            call.tool_calls[0].function.name,
          ])
        expect(() => JSON.parse(message.content)).not.toThrow()
      }
      const last = line.messages.at(-1)!
      expect(last.role === 'assistant' && ['resolve', 'escalate'].includes(last.tool_calls[0].function.name)).toBe(true)
    }
    expect(result.messages).toBe(lines.reduce((sum, line) => sum + line.messages.length, 0))
  })

  it("sharegpt: LLaMA-Factory's alternating human/observation and function_call turns, tools as a JSON string", async () => {
    const result = await exportDataset({input, out: join(work, 'sharegpt.jsonl'), format: 'sharegpt'})
    expect(result.format).toBe('sharegpt')
    for (const [index, line] of readLines<ShareGptConversation>(join(work, 'sharegpt.jsonl')).entries()) {
      const example = examples[index]
      line.conversations.forEach((turn, position) =>
        expect(['human', 'observation'].includes(turn.from)).toBe(position % 2 === 0),
      )
      expect(line.conversations.at(-1)!.from).toBe('function_call')
      const calls = line.conversations
        .filter((turn) => turn.from === 'function_call')
        .map((turn) => JSON.parse(turn.value) as {name: string; arguments: unknown})
      expect(calls).toEqual(example.trajectory.map((step) => ({name: step.action.tool, arguments: step.action.args})))
      expect((JSON.parse(line.tools) as Array<{name: string}>).map((tool) => tool.name)).toEqual(toolNames)
      expect(line.system).toBe(nativeToolsSystemPrompt())
    }
  })

  it('gives native tool-calling templates the instructions without the inline tool list and JSON step format', () => {
    const native = nativeToolsSystemPrompt()
    expect(native).toContain('The ledger (posted transactions) is the truth')
    expect(native).toContain('Root causes by rule')
    expect(native).not.toContain('Answer each turn with one JSON object')
    expect(native).not.toContain('- get_part(')
    expect(systemPrompt()).toContain('- get_part(')
  })
})
