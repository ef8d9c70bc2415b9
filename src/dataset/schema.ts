import {z} from 'zod'

import {RULES, ROOT_CAUSE_NAMES} from '../tools/catalogue.js'
import {toJsonSchema, type JsonSchema} from '../tools/json-schema.js'

/*
 * The inventory playbook: one example per JSONL line, a finding and the trajectory that
 * troubleshoots it to a resolution or an escalation. zod is the one source; the JSON Schema in
 * datasets/README.md and the ajv validators of `dataset validate` are derived from it.
 */

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()])

export const DatasetFinding = z.strictObject({
  id: z.string().min(1),
  rule: z.enum(RULES),
  entity: z.string().min(1),
  severity: z.enum(['high', 'medium', 'low']),
  evidence: z.record(z.string(), scalar),
})

/** What the loop returned for a step: the tool's result, or the error it caused. */
export const DatasetObservation = z.union([
  z.strictObject({ok: z.literal(true), result: z.unknown()}),
  z.strictObject({ok: z.literal(false), error: z.string()}),
])

export const TrajectoryStep = z.strictObject({
  thought: z.string().min(1),
  action: z.strictObject({tool: z.string().min(1), args: z.record(z.string(), z.unknown())}),
  observation: DatasetObservation,
})

/** A tool an example declares inline (foreign formats do); checked against its own args_schema. */
export const DeclaredTool = z.object({
  name: z.string().min(1),
  desc: z.string().optional(),
  description: z.string().optional(),
  args_schema: z.record(z.string(), z.unknown()).optional(),
})

export const SPLITS = ['train', 'eval'] as const

export const PlaybookExample = z.strictObject({
  id: z.string().min(1),
  instruction: z.string().min(1),
  input: z.strictObject({finding: DatasetFinding, context: z.record(z.string(), z.unknown()).optional()}),
  tools: z.array(DeclaredTool).optional(),
  trajectory: z.array(TrajectoryStep).min(1),
  final: z.strictObject({outcome: z.enum(['resolved', 'escalated']), summary: z.string().min(1)}),
  meta: z.strictObject({
    rule: z.enum(RULES),
    rootCause: z.enum(ROOT_CAUSE_NAMES),
    split: z.enum(SPLITS),
    source: z.string().min(1),
  }),
})

export type PlaybookExample = z.infer<typeof PlaybookExample>
export type PlaybookStep = z.infer<typeof TrajectoryStep>

/** The trajectory format of the seed documents: instruction, tools, trajectory, final_answer. */
export const TrajectoryExample = z.object({
  instruction: z.string().min(1),
  tools: z.array(DeclaredTool),
  trajectory: z.array(
    z.object({
      thought: z.string(),
      action: z.object({tool: z.string().min(1), args: z.record(z.string(), z.unknown())}),
      observation: z.unknown(),
    }),
  ),
  final_answer: z.string(),
})

export type TrajectoryExample = z.infer<typeof TrajectoryExample>

/** The instruction format: output is text with reasoning and calls like `adjust_quantity(part_id="P-1", delta=3)`. */
export const InstructionExample = z.object({
  instruction: z.string().min(1),
  input: z.union([z.string(), z.record(z.string(), z.unknown())]),
  output: z.string().min(1),
})

export type InstructionExample = z.infer<typeof InstructionExample>

/**
 * The question format of answer-level evals (`invagent eval --questions`): a question, the text to
 * answer it from when there is one, and the expected answer.
 */
export const QuestionExample = z.strictObject({
  query: z.string().min(1),
  context: z.string().min(1).optional(),
  expected: z.string().min(1),
})

export type QuestionExample = z.infer<typeof QuestionExample>

export const FORMATS = ['playbook', 'trajectory', 'instruction', 'question'] as const
export type DatasetFormat = (typeof FORMATS)[number]

/** The JSON Schemas of the formats, as published in datasets/README.md and compiled by ajv. */
export function datasetJsonSchemas(): Record<DatasetFormat, JsonSchema> {
  return {
    playbook: toJsonSchema(PlaybookExample),
    trajectory: toJsonSchema(TrajectoryExample),
    instruction: toJsonSchema(InstructionExample),
    question: toJsonSchema(QuestionExample),
  }
}

/**
 * Which format a parsed line is in, by its keys: `final`+`meta` is the playbook, `final_answer`
 * the trajectory format, `output` the instruction format, `query` or `expected` the question format.
 * Undefined when none fits.
 */
export function detectFormat(value: unknown): DatasetFormat | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
  const keys = value as Record<string, unknown>
  if ('final' in keys || 'meta' in keys) return 'playbook'
  if ('final_answer' in keys || ('trajectory' in keys && 'tools' in keys)) return 'trajectory'
  if ('output' in keys) return 'instruction'
  if ('trajectory' in keys) return 'playbook'
  if ('query' in keys || 'expected' in keys) return 'question'
  return undefined
}

/** The instruction of every generated example: the mission the system prompt states at length. */
export const PLAYBOOK_INSTRUCTION =
  'Audit this finding: troubleshoot it with the tools one step at a time, fix it safely and resolve it, or escalate it to a human.'
