import {z} from 'zod'

import {TOOLS, type AnyTool} from './tools.js'

export type JsonSchema = Record<string, unknown>

/** The JSON Schema of a zod schema, by zod's own conversion (draft 2020-12, without the $schema header). */
export function toJsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): JsonSchema {
  const {$schema: _ignored, ...rest} = z.toJSONSchema(schema, {io, unrepresentable: 'throw'}) as JsonSchema
  return rest
}

export interface ToolCatalogueEntry {
  name: string
  effect: AnyTool['effect']
  description: string
  args: JsonSchema
  result: JsonSchema
}

let cached: ToolCatalogueEntry[] | undefined

/** The published catalogue (`invagent tools --json`), derived from the one tool schema. */
export function toolCatalogue(): ToolCatalogueEntry[] {
  cached ??= TOOLS.map((tool) => ({
    name: tool.name,
    effect: tool.effect,
    description: tool.description,
    args: toJsonSchema(tool.args, 'input'),
    result: toJsonSchema(tool.result, 'output'),
  }))
  return cached
}

const ALLOWED_KEYWORDS = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'description',
  'enum',
  'const',
  'items',
  'minItems',
  'maxItems',
  'minimum',
  'maximum',
  'title',
  'default',
])

/**
 * Lists the places where a JSON Schema leaves the subset that llama.cpp and node-llama-cpp
 * grammars support: no pattern/format/anyOf/oneOf/allOf/$ref, a single type per node, bounds
 * only on integers, and additionalProperties never a schema. Empty when the schema is usable.
 */
export function grammarSubsetViolations(schema: JsonSchema, path = '#'): string[] {
  const problems: string[] = []
  for (const key of Object.keys(schema)) {
    if (!ALLOWED_KEYWORDS.has(key)) problems.push(`${path}: keyword "${key}" is outside the grammar subset`)
  }
  if (Array.isArray(schema.type)) problems.push(`${path}: a list of types is outside the grammar subset`)
  if ((schema.minimum !== undefined || schema.maximum !== undefined) && schema.type !== 'integer') {
    problems.push(`${path}: bounds are only supported on integers`)
  }
  if (schema.additionalProperties !== undefined && schema.additionalProperties !== false) {
    problems.push(`${path}: additionalProperties must be false or absent`)
  }
  const properties = schema.properties as Record<string, JsonSchema> | undefined
  for (const [name, child] of Object.entries(properties ?? {}))
    problems.push(...grammarSubsetViolations(child, `${path}/properties/${name}`))
  if (schema.items && typeof schema.items === 'object')
    problems.push(...grammarSubsetViolations(schema.items as JsonSchema, `${path}/items`))
  return problems
}
