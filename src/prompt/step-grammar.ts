import {toolCatalogue, type JsonSchema} from '../tools/json-schema.js'

/*
 * The JSON Schema a model's step must match, for grammar-constrained decoding: a union over the
 * tools, each fixing "tool" to its name and "args" to that tool's argument schema. Keys come in
 * the order thought, tool, args, so the model reasons before it commits to a call. Strings are
 * left unbounded: a length bound expands into one grammar rule per character and made sampling
 * about ten times slower; the token limit per step bounds a rambling thought instead.
 */

/** Drops what grammar engines do not enforce (integer bounds, a "type" next to an "enum"); zod still checks them. */
function forGrammar(schema: JsonSchema): JsonSchema {
  const {minimum: _minimum, maximum: _maximum, default: _default, title: _title, ...rest} = schema
  if (Array.isArray(rest.enum)) return {enum: rest.enum}
  if (rest.properties) {
    rest.properties = Object.fromEntries(
      Object.entries(rest.properties as Record<string, JsonSchema>).map(([name, child]) => [name, forGrammar(child)]),
    )
  }
  if (rest.items && typeof rest.items === 'object') rest.items = forGrammar(rest.items as JsonSchema)
  return rest
}

let cached: JsonSchema | undefined

export function stepJsonSchema(): JsonSchema {
  cached ??= {
    oneOf: toolCatalogue().map((tool) => ({
      type: 'object',
      properties: {thought: {type: 'string'}, tool: {const: tool.name}, args: forGrammar(tool.args)},
      required: ['thought', 'tool', 'args'],
      additionalProperties: false,
    })),
  }
  return cached
}
