import {z} from 'zod'

export type ToolEffect = 'read' | 'write' | 'terminal'

export interface ToolDefinition<
  Name extends string = string,
  Effect extends ToolEffect = ToolEffect,
  Args extends z.ZodObject = z.ZodObject,
  Result extends z.ZodType = z.ZodType,
> {
  name: Name
  /** What the model reads: when to use the tool and what it does. */
  description: string
  effect: Effect
  args: Args
  result: Result
}

/** Declares one tool; the identity function exists so that literal types survive. */
export function defineTool<
  Name extends string,
  Effect extends ToolEffect,
  Args extends z.ZodObject,
  Result extends z.ZodType,
>(definition: ToolDefinition<Name, Effect, Args, Result>): ToolDefinition<Name, Effect, Args, Result> {
  return definition
}
