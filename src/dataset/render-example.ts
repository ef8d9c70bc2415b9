import type {Finding} from '../detect/finding.js'
import {renderMessages, stepText, type ChatMessage} from '../prompt/render.js'
import type {PlaybookExample} from './schema.js'

/**
 * The chat messages of one playbook example, through the one renderer: exactly the prompt the
 * model sees before its last step, followed by that step as the final assistant turn. Every
 * earlier step appears as the assistant turn the engine would have produced, each observation
 * as the user turn it would have received, so training text equals inference text.
 */
export function exampleMessages(example: PlaybookExample): ChatMessage[] {
  const steps = example.trajectory
  const turns = steps.slice(0, -1).map((step) => ({
    step: {thought: step.thought, tool: step.action.tool, args: step.action.args},
    observation: step.observation,
  }))
  const last = steps.at(-1)!
  return [
    ...renderMessages(example.input.finding as Finding, turns),
    {role: 'assistant', content: stepText({thought: last.thought, tool: last.action.tool, args: last.action.args})},
  ]
}
