import {Ajv2020, type ErrorObject, type ValidateFunction} from 'ajv/dist/2020.js'

import {didYouMean} from '../errors.js'
import {toolCatalogue} from '../tools/json-schema.js'
import {TOOL_NAMES} from '../tools/tools.js'
import {parseCallText} from './call-text.js'
import {datasetJsonSchemas, type DatasetFormat} from './schema.js'
import {toPointer} from './json-text.js'
import {checkQuestion} from './question-check.js'

/*
 * The checks of one example, shared by `dataset validate`, `author` and `convert`: ajv
 * validators compiled once from the zod-derived JSON Schemas (the fast path), then the
 * checks a schema cannot express — tool names and arguments against the one tool schema (or
 * the example's own declarations), terminal steps, observations, consistency of final/meta.
 */

export type ProblemCode =
  | 'blank-line'
  | 'comment'
  | 'trailing-comma'
  | 'invalid-json'
  | 'unknown-format'
  | 'schema'
  | 'unknown-tool'
  | 'invalid-args'
  | 'bad-call'
  | 'missing-observation'
  | 'unterminated'
  | 'terminal-not-last'
  | 'inconsistent'
  | 'duplicate-id'
  | 'duplicate-content'
  | 'leakage'
  | 'pii'
  | 'too-long'

/** A problem inside one example; `pointer` (or `offset` into a text field) says where. */
export interface ExampleProblem {
  code: ProblemCode
  message: string
  pointer: string
  /** For a property the schema does not allow: point at its name rather than its value. */
  key?: string
  /** Offset inside the string at `pointer` (calls in the instruction format's output). */
  textOffset?: number
}

/** What an example says about itself, for the summary table. */
export interface ExampleFacts {
  format: DatasetFormat
  rule?: string
  rootCause?: string
  outcome?: string
  tools: string[]
  steps: number
}

const TERMINAL = new Set(['resolve', 'escalate'])
const KNOWN_TOOLS: ReadonlySet<string> = new Set(TOOL_NAMES)

let compiled:
  {formats: Record<DatasetFormat, ValidateFunction>; tools: Map<string, ValidateFunction>; ajv: Ajv2020} | undefined

/** The compiled validators: one per format, one per tool's args. Compiled once per process. */
export function datasetValidators(): NonNullable<typeof compiled> {
  if (compiled) return compiled
  const ajv = new Ajv2020({allErrors: true, strict: false, verbose: true})
  const schemas = datasetJsonSchemas()
  const formats = {
    playbook: ajv.compile(schemas.playbook),
    trajectory: ajv.compile(schemas.trajectory),
    instruction: ajv.compile(schemas.instruction),
    question: ajv.compile(schemas.question),
  }
  const tools = new Map(toolCatalogue().map((tool) => [tool.name, ajv.compile(tool.args)]))
  compiled = {formats, tools, ajv}
  return compiled
}

/** ajv's errors as problems: one per place, unions collapsed into one message. */
export function schemaProblems(
  errors: readonly ErrorObject[] | null | undefined,
  code: ProblemCode = 'schema',
  base = '',
): ExampleProblem[] {
  if (!errors) return []
  const unions = errors
    .filter((error) => error.keyword === 'anyOf' || error.keyword === 'oneOf')
    .map((error) => error.instancePath)
  const problems: ExampleProblem[] = []
  const seen = new Set<string>()
  for (const error of errors) {
    const pointer = base + error.instancePath
    if (
      error.keyword !== 'anyOf' &&
      error.keyword !== 'oneOf' &&
      unions.some((union) => error.instancePath.startsWith(union) && error.instancePath.length >= union.length)
    )
      continue
    let message: string
    let key: string | undefined
    const at = pointer === '' ? '(root)' : pointer
    switch (error.keyword) {
      case 'required':
        message =
          pointer.endsWith('/observation') ||
          (error.params as {missingProperty: string}).missingProperty === 'observation'
            ? `${at}: step has no observation (every step needs what the tool returned)`
            : `${at}: missing required property "${(error.params as {missingProperty: string}).missingProperty}"`
        break
      case 'additionalProperties': {
        key = (error.params as {additionalProperty: string}).additionalProperty
        const allowed = Object.keys(
          ((error.parentSchema as {properties?: object} | undefined)?.properties ?? {}) as object,
        )
        const suggestion = didYouMean(key, allowed)
        message = `${at}: unknown property "${key}"${suggestion ? ` — did you mean "${suggestion}"?` : allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ''}`
        break
      }
      case 'enum': {
        const allowed = (error.params as {allowedValues: unknown[]}).allowedValues.map(String)
        const suggestion = typeof error.data === 'string' ? didYouMean(error.data, allowed) : undefined
        message = `${at}: ${JSON.stringify(error.data)} is not allowed${suggestion ? ` — did you mean "${suggestion}"?` : allowed.length <= 12 ? ` (allowed: ${allowed.join(', ')})` : ''}`
        break
      }
      case 'anyOf':
      case 'oneOf':
        message = pointer.endsWith('/observation')
          ? `${at}: an observation is {"ok": true, "result": …} or {"ok": false, "error": "…"}`
          : `${at}: matches none of the allowed shapes`
        break
      case 'const':
        message = `${at}: must be ${JSON.stringify((error.params as {allowedValue: unknown}).allowedValue)}`
        break
      default:
        message = `${at}: ${error.message ?? error.keyword}`
    }
    const dedupe = `${pointer}|${key ?? ''}|${message}`
    if (seen.has(dedupe)) continue
    seen.add(dedupe)
    problems.push({code, message, pointer, key})
  }
  return problems
}

function checkArgsAgainstTool(tool: string, args: unknown, pointer: string, problems: ExampleProblem[]): boolean {
  const validate = datasetValidators().tools.get(tool)
  if (!validate) {
    const suggestion = didYouMean(tool, TOOL_NAMES)
    problems.push({
      code: 'unknown-tool',
      pointer,
      message: `unknown tool "${tool}"${suggestion ? ` — did you mean "${suggestion}"?` : ' (see `invagent tools`)'}`,
    })
    return false
  }
  if (validate(args)) return true
  for (const problem of schemaProblems(validate.errors, 'invalid-args', pointer.replace(/\/tool$/, '/args')))
    problems.push({...problem, message: `args of ${tool}: ${problem.message}`})
  return false
}

const TYPE_WORDS: Record<string, (value: unknown) => boolean> = {
  str: (value) => typeof value === 'string',
  string: (value) => typeof value === 'string',
  int: (value) => Number.isInteger(value),
  integer: (value) => Number.isInteger(value),
  float: (value) => typeof value === 'number',
  number: (value) => typeof value === 'number',
  bool: (value) => typeof value === 'boolean',
  boolean: (value) => typeof value === 'boolean',
  list: Array.isArray,
  array: Array.isArray,
  dict: (value) => value !== null && typeof value === 'object' && !Array.isArray(value),
  object: (value) => value !== null && typeof value === 'object' && !Array.isArray(value),
}

const declaredValidators = new Map<string, ValidateFunction>()

/** Args against an inline declaration: a JSON Schema, or the seeds' `{"name": "str"}` shorthand. */
function checkArgsAgainstDeclaration(
  name: string,
  argsSchema: Record<string, unknown> | undefined,
  args: Record<string, unknown>,
  pointer: string,
  problems: ExampleProblem[],
): void {
  if (!argsSchema || Object.keys(argsSchema).length === 0) return
  if ('type' in argsSchema || 'properties' in argsSchema) {
    const key = JSON.stringify(argsSchema)
    let validate = declaredValidators.get(key)
    if (!validate) {
      try {
        validate = datasetValidators().ajv.compile(argsSchema)
      } catch (error) {
        problems.push({
          code: 'schema',
          pointer,
          message: `tool ${name} declares an args_schema ajv cannot compile: ${(error as Error).message}`,
        })
        return
      }
      declaredValidators.set(key, validate)
    }
    if (!validate(args))
      for (const problem of schemaProblems(validate.errors, 'invalid-args', pointer))
        problems.push({...problem, message: `args of ${name}: ${problem.message}`})
    return
  }
  for (const [argName, value] of Object.entries(args)) {
    if (!(argName in argsSchema)) {
      const suggestion = didYouMean(argName, Object.keys(argsSchema))
      problems.push({
        code: 'invalid-args',
        pointer,
        key: argName,
        message: `${pointer}: ${name} declares no argument "${argName}"${suggestion ? ` — did you mean "${suggestion}"?` : ` (declared: ${Object.keys(argsSchema).join(', ')})`}`,
      })
      continue
    }
    const type = argsSchema[argName]
    const check = typeof type === 'string' ? TYPE_WORDS[type.toLowerCase().replace(/\s*\|.*$/, '')] : undefined
    if (check && value !== null && !check(value))
      problems.push({
        code: 'invalid-args',
        pointer: `${pointer}/${argName}`,
        message: `${pointer}/${argName}: ${name} declares ${argName} as ${String(type)}, got ${JSON.stringify(value)}`,
      })
  }
}

function isMissing(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '')
}

/** Checks one parsed example in a known format. Returns its problems and its facts. */
export function checkExample(value: unknown, format: DatasetFormat): {problems: ExampleProblem[]; facts: ExampleFacts} {
  const validators = datasetValidators()
  const facts: ExampleFacts = {format, tools: [], steps: 0}
  const validate = validators.formats[format]
  const problems = validate(value) ? [] : schemaProblems(validate.errors)
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return {problems, facts}
  const example = value as Record<string, unknown>
  if (format === 'playbook') checkPlaybook(example, problems, facts)
  else if (format === 'trajectory') checkTrajectory(example, problems, facts)
  else if (format === 'question') checkQuestion(example, problems, facts)
  else checkInstruction(example, problems, facts)
  return {problems, facts}
}

function stepsOf(example: Record<string, unknown>): Array<Record<string, unknown>> {
  return Array.isArray(example.trajectory)
    ? (example.trajectory.filter((step) => step !== null && typeof step === 'object') as Array<Record<string, unknown>>)
    : []
}

function actionOf(step: Record<string, unknown>): {tool?: string; args?: unknown} {
  const action = step.action
  return action !== null && typeof action === 'object' ? (action as {tool?: string; args?: unknown}) : {}
}

function checkTerminal(
  tools: Array<string | undefined>,
  pointerOf: (index: number) => string,
  problems: ExampleProblem[],
): void {
  if (tools.length === 0) return
  tools.forEach((tool, index) => {
    if (tool !== undefined && TERMINAL.has(tool) && index < tools.length - 1)
      problems.push({
        code: 'terminal-not-last',
        pointer: pointerOf(index),
        message: `${pointerOf(index)}: ${tool} ends a trajectory, but ${tools.length - 1 - index} step(s) follow it`,
      })
  })
  const last = tools.at(-1)
  if (last === undefined || !TERMINAL.has(last))
    problems.push({
      code: 'unterminated',
      pointer: pointerOf(tools.length - 1),
      message: `${pointerOf(tools.length - 1)}: the trajectory ends with ${last ?? 'no tool'}, not with resolve or escalate — add the terminal step (resolve after a validated fix, escalate otherwise)`,
    })
}

function checkPlaybook(example: Record<string, unknown>, problems: ExampleProblem[], facts: ExampleFacts): void {
  const steps = stepsOf(example)
  const meta = (example.meta ?? {}) as Record<string, unknown>
  const final = (example.final ?? {}) as Record<string, unknown>
  const finding = ((example.input as Record<string, unknown> | undefined)?.finding ?? {}) as Record<string, unknown>
  facts.rule = typeof meta.rule === 'string' ? meta.rule : undefined
  facts.rootCause = typeof meta.rootCause === 'string' ? meta.rootCause : undefined
  facts.outcome = typeof final.outcome === 'string' ? final.outcome : undefined
  facts.steps = steps.length
  const declared = Array.isArray(example.tools)
    ? new Map(
        (example.tools as Array<{name?: string; args_schema?: Record<string, unknown>}>).map((tool) => [
          String(tool.name),
          tool.args_schema,
        ]),
      )
    : undefined
  const tools: Array<string | undefined> = []
  steps.forEach((step, index) => {
    const {tool, args} = actionOf(step)
    tools.push(typeof tool === 'string' ? tool : undefined)
    if (typeof tool !== 'string') return
    facts.tools.push(tool)
    const pointer = `/trajectory/${index}/action/tool`
    if (declared) {
      if (!declared.has(tool)) {
        const suggestion = didYouMean(tool, [...declared.keys()])
        problems.push({
          code: 'unknown-tool',
          pointer,
          message: `${pointer}: tool "${tool}" is not among the example's declared tools${suggestion ? ` — did you mean "${suggestion}"?` : ''}`,
        })
      } else if (args && typeof args === 'object')
        checkArgsAgainstDeclaration(
          tool,
          declared.get(tool),
          args as Record<string, unknown>,
          `/trajectory/${index}/action/args`,
          problems,
        )
    } else {
      const before = problems.length
      checkArgsAgainstTool(tool, args, pointer, problems)
      for (const problem of problems.slice(before))
        if (problem.code === 'unknown-tool') problem.message = `${pointer}: ${problem.message}`
    }
  })
  checkTerminal(tools, (index) => toPointer(['trajectory', Math.max(index, 0), 'action', 'tool']), problems)
  const last = tools.at(-1)
  const expectedOutcome = last === 'resolve' ? 'resolved' : last === 'escalate' ? 'escalated' : undefined
  if (expectedOutcome && facts.outcome && facts.outcome !== expectedOutcome)
    problems.push({
      code: 'inconsistent',
      pointer: '/final/outcome',
      message: `/final/outcome: "${facts.outcome}" but the last step is ${last} — expected "${expectedOutcome}"`,
    })
  if (typeof finding.rule === 'string' && facts.rule && finding.rule !== facts.rule)
    problems.push({
      code: 'inconsistent',
      pointer: '/meta/rule',
      message: `/meta/rule: "${facts.rule}" but the finding's rule is "${finding.rule}"`,
    })
  if (
    typeof finding.rule === 'string' &&
    typeof finding.entity === 'string' &&
    typeof finding.id === 'string' &&
    finding.id !== `${finding.rule}:${finding.entity}`
  )
    problems.push({
      code: 'inconsistent',
      pointer: '/input/finding/id',
      message: `/input/finding/id: "${finding.id}" — a finding's id is "${finding.rule}:${finding.entity}" (rule:entity)`,
    })
  const terminalArgs = actionOf(steps.at(-1) ?? {}).args as Record<string, unknown> | undefined
  if (
    expectedOutcome &&
    terminalArgs &&
    typeof terminalArgs.root_cause === 'string' &&
    facts.rootCause &&
    terminalArgs.root_cause !== facts.rootCause
  ) {
    problems.push({
      code: 'inconsistent',
      pointer: '/meta/rootCause',
      message: `/meta/rootCause: "${facts.rootCause}" but the last step's root_cause is "${terminalArgs.root_cause}"`,
    })
  }
}

function checkTrajectory(example: Record<string, unknown>, problems: ExampleProblem[], facts: ExampleFacts): void {
  const steps = stepsOf(example)
  facts.steps = steps.length
  const declared = new Map(
    (
      (Array.isArray(example.tools) ? example.tools : []) as Array<{
        name?: string
        args_schema?: Record<string, unknown>
      }>
    ).map((tool) => [String(tool.name), tool.args_schema]),
  )
  if (steps.length === 0 && Array.isArray(example.trajectory))
    problems.push({
      code: 'schema',
      pointer: '/trajectory',
      message: '/trajectory: empty — an example needs at least one step',
    })
  steps.forEach((step, index) => {
    const {tool, args} = actionOf(step)
    if (isMissing(step.observation))
      problems.push({
        code: 'missing-observation',
        pointer: toPointer(['trajectory', index]),
        message: `${toPointer(['trajectory', index])}: step has no observation (every step needs what the tool returned)`,
      })
    if (typeof tool !== 'string') return
    facts.tools.push(tool)
    const pointer = `/trajectory/${index}/action/tool`
    if (!declared.has(tool)) {
      const suggestion = didYouMean(tool, [...declared.keys()])
      problems.push({
        code: 'unknown-tool',
        pointer,
        message: `${pointer}: tool "${tool}" is not declared in /tools${suggestion ? ` — did you mean "${suggestion}"?` : ` (declared: ${[...declared.keys()].join(', ') || 'none'})`}`,
      })
    } else if (args && typeof args === 'object')
      checkArgsAgainstDeclaration(
        tool,
        declared.get(tool),
        args as Record<string, unknown>,
        `/trajectory/${index}/action/args`,
        problems,
      )
  })
  if (typeof example.final_answer === 'string' && example.final_answer.trim() === '')
    problems.push({code: 'schema', pointer: '/final_answer', message: '/final_answer: empty'})
}

function checkInstruction(example: Record<string, unknown>, problems: ExampleProblem[], facts: ExampleFacts): void {
  if (typeof example.output !== 'string') return
  const {calls, problems: parseProblems} = parseCallText(example.output, KNOWN_TOOLS)
  for (const problem of parseProblems)
    problems.push({
      code: 'bad-call',
      pointer: '/output',
      textOffset: problem.offset,
      message: `/output: ${problem.message}`,
    })
  facts.steps = calls.length
  if (calls.length === 0 && parseProblems.length === 0) {
    problems.push({
      code: 'bad-call',
      pointer: '/output',
      message: '/output: no tool call found — write calls as tool_name(arg="value", n=3)',
    })
    return
  }
  for (const call of calls) {
    facts.tools.push(call.tool)
    const before = problems.length
    checkArgsAgainstTool(call.tool, call.args, '/output', problems)
    for (const problem of problems.slice(before)) {
      problem.pointer = '/output'
      problem.textOffset = call.offset
      if (problem.code === 'invalid-args')
        problem.message = `/output: args of ${call.tool}: ${problem.message.replace(/^args of [a-z_]+: \/output:? ?/, '')}`
      else problem.message = `/output: ${problem.message}`
    }
  }
  checkTerminal(
    calls.map((call) => call.tool),
    () => '/output',
    problems,
  )
  for (const problem of problems)
    if ((problem.code === 'unterminated' || problem.code === 'terminal-not-last') && problem.textOffset === undefined)
      problem.textOffset = calls.at(-1)?.offset
  const last = calls.at(-1)
  if (last && TERMINAL.has(last.tool)) {
    facts.outcome = last.tool === 'resolve' ? 'resolved' : 'escalated'
    if (typeof last.args.root_cause === 'string') facts.rootCause = last.args.root_cause
  }
}
