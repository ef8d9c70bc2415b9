import {appendFileSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'

import {AuditLog} from '../agent/audit-log.js'
import {runAudit} from '../agent/audit.js'
import type {Finding} from '../detect/finding.js'
import type {Engine, EngineProposal, EngineSession, Observation} from '../engines/engine.js'
import {SqliteInventory} from '../inventory/sqlite-backend.js'
import {observationText} from '../prompt/render.js'
import {initInventory} from '../simulate/generate.js'
import {rootCausesOf, RULES, type RuleName} from '../tools/catalogue.js'
import {toolCatalogue, type JsonSchema} from '../tools/json-schema.js'
import {getTool} from '../tools/tools.js'
import {checkExample} from './check.js'
import {exampleFromConversation} from './generate.js'
import {RecordingEngine} from './recording-engine.js'
import type {PlaybookExample} from './schema.js'

/*
 * `dataset author`: a curator picks a rule and root cause, invagent builds a sandbox inventory
 * with that fault, and the curator steps through it in the real audit loop — their thought, a
 * tool and its args (validated as they are typed), the real observation — until resolve or
 * escalate. The loop is the same one audits run (policy gate, validation), so what the
 * curator writes is what the model will later be trained to do.
 */

export interface AuthorPrompter {
  select<T extends string>(
    message: string,
    choices: ReadonlyArray<{name: string; value: T; description?: string}>,
  ): Promise<T>
  input(message: string, options?: {default?: string; validate?: (value: string) => true | string}): Promise<string>
  confirm(message: string, defaultValue: boolean): Promise<boolean>
  show(text: string): void
}

export interface AuthorOptions {
  out: string
  prompter: AuthorPrompter
  seed?: number
}

export interface AuthorResult {
  appended: boolean
  out: string
  example?: PlaybookExample
  problems: string[]
}

/** Parses what a curator typed for one argument, by the argument's JSON Schema type. */
function parseArgument(text: string, schema: JsonSchema): unknown {
  if (schema.type === 'integer') {
    if (!/^-?\d+$/.test(text.trim())) throw new Error(`expected an integer, got "${text}"`)
    return Number(text.trim())
  }
  return text
}

/** Asks for a tool's arguments one by one; each is checked by the tool's own schema before moving on. */
async function askArguments(
  prompter: AuthorPrompter,
  toolName: string,
  finding: Finding,
): Promise<Record<string, unknown>> {
  const entry = toolCatalogue().find((tool) => tool.name === toolName)!
  const tool = getTool(toolName)!
  const properties = (entry.args.properties ?? {}) as Record<string, JsonSchema>
  const required = new Set((entry.args.required as string[] | undefined) ?? [])
  while (true) {
    const args: Record<string, unknown> = {}
    for (const [name, schema] of Object.entries(properties)) {
      const optional = !required.has(name)
      if (Array.isArray(schema.enum)) {
        const choices = (schema.enum as string[]).map((value) => ({name: value, value}))
        const picked = await prompter.select(
          `${name}${optional ? ' (optional)' : ''}`,
          optional ? [{name: '(none)', value: ''}, ...choices] : choices,
        )
        if (picked !== '') args[name] = picked
        continue
      }
      const guess =
        (name === 'part_id' && finding.entity.startsWith('P-')) ||
        (name === 'txn_id' && finding.entity.startsWith('T-'))
          ? finding.entity
          : undefined
      const text = await prompter.input(
        `${name}${optional ? ' (optional, empty to skip)' : ''} [${String(schema.type)}]`,
        {
          default: guess,
          validate: (value) => {
            if (value === '' && optional) return true
            try {
              const parsed = parseArgument(value, schema)
              const single = tool.args.shape[name as keyof typeof tool.args.shape] as {
                safeParse(value: unknown): {success: boolean; error?: {issues: Array<{message: string}>}}
              }
              const result = single.safeParse(parsed)
              return result.success ? true : result.error!.issues.map((issue) => issue.message).join('; ')
            } catch (error) {
              return (error as Error).message
            }
          },
        },
      )
      if (text === '' && optional) continue
      args[name] = parseArgument(text, schema)
    }
    const checked = tool.args.safeParse(args)
    if (checked.success) return checked.data as Record<string, unknown>
    prompter.show(
      `These arguments do not fit ${toolName}: ${checked.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}. Again:`,
    )
  }
}

/** The curator as an engine: each step is asked for, after the previous observation is shown. */
class CuratorEngine implements Engine {
  readonly name = 'curator'
  private readonly prompter: AuthorPrompter
  private readonly target: string

  constructor(prompter: AuthorPrompter, target: string) {
    this.prompter = prompter
    this.target = target
  }

  start(finding: Finding): EngineSession {
    const prompter = this.prompter
    if (finding.id !== this.target) {
      // Another finding the same fault raises: not the one being authored.
      return {
        next: async () => ({
          step: {
            thought: 'Not the finding being authored.',
            tool: 'escalate',
            args: {root_cause: 'unknown', reason: 'not authored', summary: 'left for another example'},
          },
        }),
      }
    }
    prompter.show(`Finding: ${JSON.stringify(finding)}`)
    return {
      async next(observation: Observation | undefined): Promise<EngineProposal> {
        if (observation) prompter.show(observationText(observation))
        const thought = await prompter.input('thought', {
          validate: (value) => (value.trim() === '' ? 'write the reasoning behind this step' : true),
        })
        const tools = toolCatalogue().map((tool) => ({
          name: `${tool.name} (${tool.effect})`,
          value: tool.name,
          description: tool.description,
        }))
        const tool = await prompter.select('tool', tools)
        const args = await askArguments(prompter, tool, finding)
        return {step: {thought: thought.trim(), tool, args}}
      },
    }
  }
}

/** Runs one authoring session; appends the example to `out` when it validates and the curator confirms. */
export async function authorExample(options: AuthorOptions): Promise<AuthorResult> {
  const {prompter} = options
  const rule = await prompter.select<RuleName>(
    'rule',
    RULES.map((name) => ({name, value: name})),
  )
  const variants = rootCausesOf(rule)
  const rootCause = await prompter.select(
    'root cause',
    variants.map((entry) => ({name: `${entry.rootCause} (${entry.expected})`, value: entry.rootCause})),
  )
  const variant = variants.find((entry) => entry.rootCause === rootCause)!
  const directory = mkdtempSync(join(tmpdir(), 'invagent-author-'))
  const out = resolve(options.out)
  try {
    const db = join(directory, 'sandbox.db')
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31)
    const {faults} = initInventory({path: db, parts: 12, days: 10, faults: 1, seed, variants: [variant]})
    const fault = faults[0]
    prompter.show(
      `Sandbox inventory (seed ${seed}) with one fault: ${rule} / ${rootCause} on ${fault.entity}; the expected outcome is ${variant.expected === 'fix' ? 'a validated fix' : 'an escalation'}.`,
    )
    const backend = SqliteInventory.open(db)
    const engine = new RecordingEngine(new CuratorEngine(prompter, `${fault.rule}:${fault.entity}`))
    const log = AuditLog.create(join(directory, 'logs'), 'author')
    let outcome
    try {
      const report = await runAudit({backend, engine, log, dryRun: true, rules: [rule]})
      outcome = report.outcomes.find((candidate) => candidate.findingId === `${fault.rule}:${fault.entity}`)
    } finally {
      log.close()
      backend.close()
    }
    const conversation = engine.conversations.get(`${fault.rule}:${fault.entity}`)
    if (!conversation || !outcome)
      return {appended: false, out, problems: ['the fault was not detected in the sandbox inventory']}
    prompter.show(`Outcome: ${outcome.outcome} — ${outcome.summary}`)
    const example = exampleFromConversation(conversation, {
      rootCause,
      split: 'train',
      source: 'authored',
      context: {sandboxSeed: seed},
    })
    if (!example)
      return {appended: false, out, problems: [`the trajectory ended without resolve or escalate (${outcome.summary})`]}
    const problems = checkExample(example, 'playbook').problems.map((problem) => problem.message)
    const expected = variant.expected === 'fix' ? 'would_resolve' : 'escalated'
    if (outcome.outcome !== expected)
      problems.push(
        `the outcome is ${outcome.outcome}, but this root cause should end ${expected === 'escalated' ? 'in an escalation' : 'in a validated fix'}`,
      )
    if (problems.length > 0) {
      for (const problem of problems) prompter.show(`problem: ${problem}`)
      return {appended: false, out, example, problems}
    }
    if (!(await prompter.confirm(`Append this ${example.trajectory.length}-step example to ${out}?`, true)))
      return {appended: false, out, example, problems}
    mkdirSync(dirname(out), {recursive: true})
    appendFileSync(out, JSON.stringify(example) + '\n')
    return {appended: true, out, example, problems}
  } finally {
    rmSync(directory, {recursive: true, force: true})
  }
}
