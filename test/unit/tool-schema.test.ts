import {readFileSync} from 'node:fs'
import {resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {validateStep} from '../../src/agent/step.js'
import {grammarSubsetViolations, toolCatalogue, type JsonSchema} from '../../src/tools/json-schema.js'
import {TOOL_NAMES} from '../../src/tools/tools.js'

const COMMITTED_CATALOGUE = resolve(import.meta.dirname, '../../schemas/tools.json')

describe('tool catalogue', () => {
  it('lists the 18 tools once each: 7 read, 9 write, 2 terminal', () => {
    const catalogue = toolCatalogue()
    expect(catalogue.map((tool) => tool.name)).toEqual(TOOL_NAMES)
    expect(new Set(TOOL_NAMES).size).toBe(18)
    const effects = catalogue.reduce<Record<string, number>>(
      (counts, tool) => ({...counts, [tool.effect]: (counts[tool.effect] ?? 0) + 1}),
      {},
    )
    expect(effects).toEqual({read: 7, write: 9, terminal: 2})
  })

  it.each(toolCatalogue().map((tool) => [tool.name, tool.args] as const))(
    '%s: args stay inside the grammar subset',
    (_name, args) => {
      expect(grammarSubsetViolations(args)).toEqual([])
    },
  )

  it('every write tool takes a reason', () => {
    for (const tool of toolCatalogue().filter((entry) => entry.effect === 'write')) {
      expect(tool.args.required, tool.name).toContain('reason')
    }
  })

  it('is pinned: toolCatalogue() equals the committed schemas/tools.json', () => {
    const committed = readFileSync(COMMITTED_CATALOGUE, 'utf8')
    const current = JSON.stringify(toolCatalogue(), null, 2) + '\n'
    // Compared as text: even the order of properties is part of what the model sees.
    expect(
      current,
      'the tool catalogue the model sees changed; if intended, run `npm run schemas` and commit schemas/tools.json',
    ).toBe(committed)
  })
})

describe('grammarSubsetViolations', () => {
  it('accepts integer bounds, enums, optional properties and arrays of objects', () => {
    const schema: JsonSchema = {
      type: 'object',
      properties: {
        limit: {type: 'integer', minimum: 1, maximum: 50},
        status: {type: 'string', enum: ['pending', 'error']},
        lines: {
          type: 'array',
          items: {type: 'object', properties: {qty: {type: 'integer'}}, required: ['qty'], additionalProperties: false},
        },
      },
      required: ['status'],
      additionalProperties: false,
    }
    expect(grammarSubsetViolations(schema)).toEqual([])
  })

  it('flags a pattern', () => {
    expect(grammarSubsetViolations({type: 'string', pattern: '^P-\\d{6}$'})).toEqual([
      '#: keyword "pattern" is outside the grammar subset',
    ])
  })

  it('flags anyOf', () => {
    expect(grammarSubsetViolations({anyOf: [{type: 'string'}, {type: 'null'}]})).toEqual([
      '#: keyword "anyOf" is outside the grammar subset',
    ])
  })

  it('flags bounds on a number that is not an integer', () => {
    expect(grammarSubsetViolations({type: 'number', minimum: 0})).toEqual(['#: bounds are only supported on integers'])
    expect(grammarSubsetViolations({type: 'number', maximum: 1})).toEqual(['#: bounds are only supported on integers'])
  })

  it('flags a list of types', () => {
    expect(grammarSubsetViolations({type: ['string', 'null']})).toEqual([
      '#: a list of types is outside the grammar subset',
    ])
  })

  it('flags additionalProperties given as a schema', () => {
    expect(grammarSubsetViolations({type: 'object', additionalProperties: {type: 'string'}})).toEqual([
      '#: additionalProperties must be false or absent',
    ])
  })

  it('names the path of a nested problem', () => {
    const schema: JsonSchema = {
      type: 'object',
      properties: {
        part_id: {type: 'string', pattern: '^P-'},
        lines: {type: 'array', items: {type: 'object', properties: {qty: {type: 'number', minimum: 1}}}},
      },
    }
    expect(grammarSubsetViolations(schema)).toEqual([
      '#/properties/part_id: keyword "pattern" is outside the grammar subset',
      '#/properties/lines/items/properties/qty: bounds are only supported on integers',
    ])
  })
})

describe('validateStep', () => {
  it('accepts a valid step and returns the parsed args', () => {
    const step = validateStep({
      thought: 'read the part',
      tool: 'list_transactions',
      args: {part_id: 'P-000001', status: 'pending', limit: 5},
    })
    expect(step.ok).toBe(true)
    if (!step.ok) return
    expect(step.tool.name).toBe('list_transactions')
    expect(step.thought).toBe('read the part')
    expect(step.args).toEqual({part_id: 'P-000001', status: 'pending', limit: 5})
  })

  it('suggests the closest tool for a misspelled one', () => {
    expect(validateStep({thought: 't', tool: 'ajust_quantity', args: {}})).toEqual({
      ok: false,
      error: 'unknown tool "ajust_quantity" — did you mean "adjust_quantity"?',
    })
    expect(validateStep({thought: 't', tool: 'get_prat', args: {}})).toEqual({
      ok: false,
      error: 'unknown tool "get_prat" — did you mean "get_part"?',
    })
  })

  it('suggests nothing for a tool name far from every tool', () => {
    expect(validateStep({thought: 't', tool: 'frobnicate', args: {}})).toEqual({
      ok: false,
      error: 'unknown tool "frobnicate"',
    })
  })

  it('reports the path of bad args', () => {
    const wrongType = validateStep({
      thought: 't',
      tool: 'adjust_quantity',
      args: {part_id: 'P-000001', delta: 'ten', reason: 'count'},
    })
    expect(wrongType.ok).toBe(false)
    if (!wrongType.ok) expect(wrongType.error).toMatch(/^invalid args for adjust_quantity: delta: /)
    const notInteger = validateStep({
      thought: 't',
      tool: 'adjust_quantity',
      args: {part_id: 'P-000001', delta: 1.5, reason: 'count'},
    })
    if (!notInteger.ok) expect(notInteger.error).toMatch(/^invalid args for adjust_quantity: delta: /)
    expect(notInteger.ok).toBe(false)
    const outOfBounds = validateStep({thought: 't', tool: 'list_transactions', args: {part_id: 'P-000001', limit: 0}})
    if (!outOfBounds.ok) expect(outOfBounds.error).toMatch(/^invalid args for list_transactions: limit: /)
    expect(outOfBounds.ok).toBe(false)
    const missing = validateStep({thought: 't', tool: 'get_part', args: {}})
    if (!missing.ok) expect(missing.error).toMatch(/^invalid args for get_part: part_id: /)
    expect(missing.ok).toBe(false)
    const badEnum = validateStep({thought: 't', tool: 'resolve', args: {root_cause: 'cache_drif', summary: 's'}})
    if (!badEnum.ok) expect(badEnum.error).toMatch(/^invalid args for resolve: root_cause: /)
    expect(badEnum.ok).toBe(false)
  })

  it('rejects extra properties in args and in the step', () => {
    const extraArg = validateStep({thought: 't', tool: 'get_part', args: {part_id: 'P-000001', force: true}})
    expect(extraArg.ok).toBe(false)
    if (!extraArg.ok) expect(extraArg.error).toMatch(/^invalid args for get_part: \(root\): .*"force"/)
    const extraField = validateStep({thought: 't', tool: 'get_part', args: {part_id: 'P-000001'}, confidence: 0.9})
    expect(extraField.ok).toBe(false)
    if (!extraField.ok) expect(extraField.error).toMatch(/^invalid step: \(root\): .*"confidence"/)
  })

  it('rejects a step that is not the step shape', () => {
    for (const candidate of [
      'get_part',
      null,
      {tool: 'get_part', args: {part_id: 'P-000001'}},
      {thought: 't', tool: 'get_part', args: []},
    ]) {
      const step = validateStep(candidate)
      expect(step.ok, JSON.stringify(candidate)).toBe(false)
      if (!step.ok)
        expect(step.error).toMatch(/^invalid step: .*Expected \{"thought": string, "tool": string, "args": object\}\.$/)
    }
  })
})
