import {z} from 'zod'

import {didYouMean} from '../errors.js'
import {getTool, TOOL_NAMES, type AnyTool} from '../tools/tools.js'

/** The shape of one step, as the engine must produce it. */
export const StepSchema = z.strictObject({
  thought: z.string(),
  tool: z.string(),
  args: z.record(z.string(), z.unknown()),
})

export type ValidatedStep =
  {ok: true; thought: string; tool: AnyTool; args: Record<string, unknown>} | {ok: false; error: string}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ')
}

/** Validates a proposed step against the step shape and the named tool's argument schema. */
export function validateStep(candidate: unknown): ValidatedStep {
  const shape = StepSchema.safeParse(candidate)
  if (!shape.success)
    return {
      ok: false,
      error:
        `invalid step: ${formatIssues(shape.error)}. ` +
        'Expected {"thought": string, "tool": string, "args": object}.',
    }
  const tool = getTool(shape.data.tool)
  if (!tool) {
    const suggestion = didYouMean(shape.data.tool, TOOL_NAMES)
    return {
      ok: false,
      error: `unknown tool "${shape.data.tool}"${suggestion ? ` — did you mean "${suggestion}"?` : ''}`,
    }
  }
  const args = tool.args.safeParse(shape.data.args)
  if (!args.success) return {ok: false, error: `invalid args for ${tool.name}: ${formatIssues(args.error)}`}
  return {ok: true, thought: shape.data.thought, tool, args: args.data as Record<string, unknown>}
}
