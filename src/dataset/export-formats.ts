import {compactResult, findingMessage, nativeToolsSystemPrompt} from '../prompt/render.js'
import {toolCatalogue, type JsonSchema} from '../tools/json-schema.js'
import type {Finding} from '../detect/finding.js'
import type {PlaybookExample, PlaybookStep} from './schema.js'

/*
 * The playbook in the shapes other trainers read, for base models with native tool calling
 * (Qwen2.5, Llama 3.2, …) whose own chat template renders tools and tool calls:
 *
 *   openai    {"messages": [...], "tools": [...]}: assistant turns with `tool_calls` (arguments as
 *             objects, as transformers' chat templates take them), `tool` turns with the results;
 *             what TRL's SFTTrainer and axolotl's chat_template datasets read
 *   sharegpt  {"conversations": [...], "system", "tools"}: LLaMA-Factory's roles human,
 *             function_call, observation (tools as a JSON string, as its dataset_info expects)
 *
 * Both start from the same finding text and compacted results as the chat format, with the
 * instructions of the system prompt minus the tool list (the template renders `tools`).
 */

export const EXPORT_FORMATS = ['chat', 'openai', 'sharegpt'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

/** A tool as OpenAI-style function definitions describe it. */
export interface FunctionTool {
  type: 'function'
  function: {name: string; description: string; parameters: JsonSchema}
}

export interface OpenAiToolCall {
  id: string
  type: 'function'
  function: {name: string; arguments: Record<string, unknown>}
}

export type OpenAiMessage =
  | {role: 'system' | 'user'; content: string}
  | {role: 'assistant'; content: string; tool_calls: OpenAiToolCall[]}
  | {role: 'tool'; tool_call_id: string; name: string; content: string}

export interface OpenAiConversation {
  id: string
  messages: OpenAiMessage[]
  tools: FunctionTool[]
}

export interface ShareGptConversation {
  id: string
  conversations: Array<{from: 'human' | 'function_call' | 'observation' | 'gpt'; value: string}>
  system: string
  tools: string
}

/** The tools of an example: its own declared ones (converted datasets), else invagent's catalogue. */
export function functionTools(example: PlaybookExample): FunctionTool[] {
  if (example.tools && example.tools.length > 0) {
    return example.tools.map((tool) => ({
      type: 'function',
      function: {
        name: tool.name,
        description: tool.description ?? tool.desc ?? '',
        parameters: (tool.args_schema as JsonSchema | undefined) ?? {type: 'object', properties: {}},
      },
    }))
  }
  return toolCatalogue().map((tool) => ({
    type: 'function',
    function: {name: tool.name, description: tool.description, parameters: tool.args},
  }))
}

/** A tool's result as the content of a tool turn: the compacted JSON, or the error. */
export function toolResultText(observation: PlaybookStep['observation']): string {
  return observation.ok ? JSON.stringify(compactResult(observation.result)) : JSON.stringify({error: observation.error})
}

/** Steps before the last have results; the last (resolve or escalate) ends the conversation. */
function callId(index: number): string {
  return `call_${index + 1}`
}

export function openAiConversation(example: PlaybookExample): OpenAiConversation {
  const messages: OpenAiMessage[] = [
    {role: 'system', content: nativeToolsSystemPrompt()},
    {role: 'user', content: findingMessage(example.input.finding as Finding)},
  ]
  example.trajectory.forEach((step, index) => {
    const call: OpenAiToolCall = {
      id: callId(index),
      type: 'function',
      function: {name: step.action.tool, arguments: step.action.args},
    }
    messages.push({role: 'assistant', content: step.thought, tool_calls: [call]})
    if (index < example.trajectory.length - 1) {
      messages.push({
        role: 'tool',
        tool_call_id: call.id,
        name: step.action.tool,
        content: toolResultText(step.observation),
      })
    }
  })
  return {id: example.id, messages, tools: functionTools(example)}
}

/** LLaMA-Factory's function_call turns hold the call only: the step's thought has no place there. */
export function shareGptConversation(example: PlaybookExample): ShareGptConversation {
  const conversations: ShareGptConversation['conversations'] = [
    {from: 'human', value: findingMessage(example.input.finding as Finding)},
  ]
  example.trajectory.forEach((step, index) => {
    const call = {name: step.action.tool, arguments: step.action.args}
    conversations.push({from: 'function_call', value: JSON.stringify(call)})
    if (index < example.trajectory.length - 1) {
      conversations.push({from: 'observation', value: toolResultText(step.observation)})
    }
  })
  const tools = functionTools(example).map((tool) => tool.function)
  return {id: example.id, conversations, system: nativeToolsSystemPrompt(), tools: JSON.stringify(tools)}
}

/** The number of messages (turns) of an exported line, whatever its format. */
export function messageCount(line: OpenAiConversation | ShareGptConversation | {messages: unknown[]}): number {
  return 'conversations' in line ? line.conversations.length + 1 : line.messages.length
}
