import type {ExampleFacts, ExampleProblem} from './check.js'

/*
 * The checks of a question line that its JSON Schema cannot express. A text of only white space
 * passes `minLength` but asks or expects nothing: an empty expected answer would make "contains"
 * true for every answer, and an empty query asks the model nothing.
 */

const FIELDS = ['query', 'context', 'expected'] as const

/** Problems of one question (`{query, context?, expected}`) beyond its schema. */
export function checkQuestion(example: Record<string, unknown>, problems: ExampleProblem[], facts: ExampleFacts): void {
  facts.steps = 0
  for (const field of FIELDS) {
    const value = example[field]
    if (typeof value !== 'string' || value.length === 0 || value.trim() !== '') continue
    const why =
      field === 'expected'
        ? 'every answer would "contain" it'
        : field === 'query'
          ? 'the model would be asked nothing'
          : 'leave context out instead'
    problems.push({code: 'schema', pointer: `/${field}`, message: `/${field}: only white space — ${why}`})
  }
}
