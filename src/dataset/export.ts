import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync} from 'node:fs'
import {once} from 'node:events'
import {dirname, resolve} from 'node:path'
import {createInterface} from 'node:readline'

import {UserError} from '../errors.js'
import type {ChatMessage} from '../prompt/render.js'
import {checkExample} from './check.js'
import {messageCount, openAiConversation, shareGptConversation, type ExportFormat} from './export-formats.js'
import {exampleMessages} from './render-example.js'
import {detectFormat, type PlaybookExample} from './schema.js'
import {ModelTemplate} from './token-count.js'

export const DEFAULT_DATASET = 'datasets/playbook.jsonl'

export interface ExportOptions {
  input: string
  out: string
  /** chat (default): {"id", "messages"} as invagent prompts; openai / sharegpt: native tool calling (export-formats.ts). */
  format?: ExportFormat
  /** A GGUF whose own chat template must keep every message of every example (each example's chat messages). */
  template?: string
  onProgress?: (examples: number) => void
}

export interface ExportResult {
  input: string
  out: string
  format: ExportFormat
  examples: number
  messages: number
  sha256: string
  template?: {model: string; checked: number}
}

/** One exported line: the example's id and its chat messages (train on the assistant turns). */
export interface ExportedConversation {
  id: string
  messages: ChatMessage[]
}

/**
 * Renders every example of a playbook file into chat messages through the one renderer and
 * writes them as JSONL (`{"id", "messages"}`), atomically. Refuses examples that do not validate
 * and, with a template, examples whose content the model's own chat template drops.
 */
export async function exportDataset(options: ExportOptions): Promise<ExportResult> {
  const input = resolve(options.input)
  const out = resolve(options.out)
  if (!existsSync(input))
    throw new UserError(`${options.input} does not exist`, {
      suggestions: ['Generate the shipped dataset with `invagent dataset generate`, or give a playbook JSONL file.'],
    })
  if (input === out) throw new UserError('--out must differ from the input file')
  const format = options.format ?? 'chat'
  const template = options.template ? await ModelTemplate.load(options.template, {ownTemplate: true}) : undefined
  mkdirSync(dirname(out), {recursive: true})
  const temporary = `${out}.tmp-${process.pid}`
  const writer = createWriteStream(temporary, {encoding: 'utf8'})
  const hash = createHash('sha256')
  const failures: string[] = []
  let examples = 0
  let messages = 0
  try {
    let number = 0
    for await (const line of createInterface({
      input: createReadStream(input, {encoding: 'utf8'}),
      crlfDelay: Infinity,
    })) {
      number++
      if (line.trim() === '') continue
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch {
        failures.push(`${options.input}:${number}: not valid JSON`)
        continue
      }
      const detected = detectFormat(value)
      if (detected !== 'playbook') {
        failures.push(
          `${options.input}:${number}: not a playbook example (${detected ?? 'unknown'} format) — convert it first: invagent dataset convert`,
        )
        continue
      }
      const {problems} = checkExample(value, 'playbook')
      if (problems.length > 0) {
        failures.push(`${options.input}:${number}: ${problems[0].message}`)
        continue
      }
      const example = value as PlaybookExample
      const conversation: ExportedConversation = {id: example.id, messages: exampleMessages(example)}
      if (template) {
        const dropped = template.droppedContent(conversation.messages)
        if (dropped.length > 0)
          failures.push(
            `${options.input}:${number}: ${template.model}'s chat template drops or alters ${dropped.map((item) => `message ${item.index} (${item.role})`).join(', ')} of ${example.id}`,
          )
      }
      const exported =
        format === 'openai'
          ? openAiConversation(example)
          : format === 'sharegpt'
            ? shareGptConversation(example)
            : conversation
      const text = JSON.stringify(exported) + '\n'
      hash.update(text)
      if (!writer.write(text)) await once(writer, 'drain')
      examples++
      messages += messageCount(exported)
      options.onProgress?.(examples)
    }
    writer.end()
    await once(writer, 'finish')
    if (failures.length > 0) {
      throw new UserError(
        `${failures.length} example(s) cannot be exported:\n${failures.slice(0, 20).join('\n')}${failures.length > 20 ? `\n… and ${failures.length - 20} more` : ''}`,
        {
          code: 'EXPORT_FAILED',
          suggestions: [
            `Run \`invagent dataset validate ${options.input}\` and fix what it reports; nothing was written.`,
          ],
        },
      )
    }
    if (examples === 0) throw new UserError(`${options.input} holds no examples`)
    renameSync(temporary, out)
    return {
      input,
      out,
      format,
      examples,
      messages,
      sha256: hash.digest('hex'),
      ...(template ? {template: {model: template.model, checked: examples}} : {}),
    }
  } catch (error) {
    writer.destroy()
    rmSync(temporary, {force: true})
    throw error
  }
}
