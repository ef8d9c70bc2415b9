import {z} from 'zod'

import {toJsonSchema} from '../tools/json-schema.js'
import {RULES, ROOT_CAUSE_NAMES} from '../tools/catalogue.js'

/*
 * The --json output of every command is a contract for CI users: each is a zod schema here,
 * its JSON Schema is committed under schemas/, and a test fails when they drift apart.
 */

const rule = z.enum(RULES)
const evidence = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))

export const FindingOutput = z.object({id: z.string(), rule, entity: z.string(), severity: z.enum(['high', 'medium', 'low']), evidence})

export const DetectOutput = z.object({findings: z.array(FindingOutput)})

export const AuditOutput = z.object({
  runId: z.string(),
  dryRun: z.boolean(),
  engine: z.string(),
  db: z.string(),
  logFile: z.string(),
  findingsDetected: z.number().int(),
  outcomes: z.array(
    z.object({
      findingId: z.string(),
      rule,
      entity: z.string(),
      rootCause: z.union([z.enum(ROOT_CAUSE_NAMES), z.literal('resolved_by_earlier_fix')]),
      outcome: z.enum(['resolved', 'would_resolve', 'escalated', 'failed']),
      actions: z.array(z.object({tool: z.string(), args: z.record(z.string(), z.unknown()), applied: z.boolean()})),
      summary: z.string(),
      steps: z.number().int(),
      invalidSteps: z.number().int(),
    }),
  ),
  summary: z.object({resolved: z.number().int(), wouldResolve: z.number().int(), escalated: z.number().int(), failed: z.number().int()}),
})

export const InventoryInitOutput = z.object({
  db: z.string(),
  parts: z.number().int(),
  transactions: z.number().int(),
  faults: z.array(
    z.object({
      id: z.string(),
      rule,
      rootCause: z.string(),
      entity: z.string(),
      expected: z.enum(['fix', 'escalate']),
      alsoDetected: z.array(z.object({rule, entity: z.string()})),
    }),
  ),
})

export const ToolsOutput = z.object({
  tools: z.array(z.object({name: z.string(), effect: z.enum(['read', 'write', 'terminal']), description: z.string(), args: z.record(z.string(), z.unknown()), result: z.record(z.string(), z.unknown())})),
})

export const LogVerifyOutput = z.object({
  ok: z.boolean(),
  files: z.array(z.object({file: z.string(), ok: z.boolean(), lines: z.number().int(), problem: z.object({line: z.number().int(), message: z.string()}).optional()})),
})

export const InventoryIndexOutput = z.object({db: z.string(), created: z.array(z.string())})

/** Command id → the schema of its --json output. */
export const OUTPUT_SCHEMAS: Record<string, z.ZodType> = {
  audit: AuditOutput,
  detect: DetectOutput,
  tools: ToolsOutput,
  'inventory init': InventoryInitOutput,
  'inventory indexes': InventoryIndexOutput,
  'log verify': LogVerifyOutput,
}

export function outputJsonSchemas(): Record<string, unknown> {
  return Object.fromEntries(Object.entries(OUTPUT_SCHEMAS).map(([id, schema]) => [id, toJsonSchema(schema, 'output')]))
}
