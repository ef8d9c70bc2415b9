import {mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'

import {AuditLog} from '../agent/audit-log.js'
import {runAudit} from '../agent/audit.js'
import type {Observation} from '../engines/engine.js'
import {RulesEngine} from '../engines/rules-engine.js'
import {UserError} from '../errors.js'
import {SqliteInventory} from '../inventory/sqlite-backend.js'
import {initInventory} from '../simulate/generate.js'
import {ROOT_CAUSES, type RuleName} from '../tools/catalogue.js'
import {canonicalJson, sha256Hex} from '../util/canonical-json.js'
import {Random} from '../util/random.js'
import {checkExample} from './check.js'
import {RecordingEngine, type RecordedConversation} from './recording-engine.js'
import {PLAYBOOK_INSTRUCTION, type PlaybookExample} from './schema.js'
import {varyThought} from './thoughts.js'

/*
 * `dataset generate`: sandbox inventories with every root cause of docs/architecture.md ("Rules") injected, solved
 * by the rules playbook through real tool executions, recorded turn by turn. The split is by
 * inventory, deterministic from the seed, and leak-free by construction: eval inventories number
 * their entities from EVAL_ID_BASE (ids no training inventory has) and their integration
 * messages use the held-out phrasings.
 */

export const EVAL_ID_BASE = 500_000
export const SANDBOX_INVENTORY = {parts: 60, days: 20, faults: 26}

export interface GenerateOptions {
  count: number
  evalCount: number
  seed: number
  out: string
  evalOut: string
  onProgress?: (split: 'train' | 'eval', done: number, target: number) => void
}

export interface GenerateResult {
  seed: number
  train: {file: string; examples: number; inventories: number}
  eval: {file: string; examples: number; inventories: number}
  byRootCause: Record<string, {train: number; eval: number}>
  /** Findings the playbook did not solve as the ground truth says (left out, counted). */
  skipped: number
}

const VALID_ROOT_CAUSES = new Map<string, Set<string>>()
for (const entry of ROOT_CAUSES) {
  if (!VALID_ROOT_CAUSES.has(entry.rule)) VALID_ROOT_CAUSES.set(entry.rule, new Set())
  VALID_ROOT_CAUSES.get(entry.rule)!.add(entry.rootCause)
}

function terminalObservation(tool: string): Observation {
  return tool === 'resolve' ? {ok: true, result: {validated: true}} : {ok: true, result: {escalated: true}}
}

export interface ExampleLabels {
  rootCause: string
  split: 'train' | 'eval'
  source: string
  context?: Record<string, unknown>
  /** Varies the wording of the thoughts; omitted, they are kept as written. */
  random?: Random
}

/** One recorded conversation as a playbook example, or undefined when it did not end in resolve/escalate. */
export function exampleFromConversation(
  conversation: RecordedConversation,
  labels: ExampleLabels,
): PlaybookExample | undefined {
  const steps = conversation.steps as Array<{thought: string; tool: string; args: Record<string, unknown>}>
  const last = steps.at(-1)
  if (!last || (last.tool !== 'resolve' && last.tool !== 'escalate')) return undefined
  if (conversation.observations.length !== steps.length - 1) return undefined
  const trajectory = steps.map((step, index) => ({
    thought: labels.random ? varyThought(labels.random, step.tool, step.thought, index) : step.thought,
    action: {tool: step.tool, args: step.args},
    observation: index < steps.length - 1 ? conversation.observations[index] : terminalObservation(step.tool),
  }))
  const body = {
    instruction: PLAYBOOK_INSTRUCTION,
    input: {finding: conversation.finding, ...(labels.context ? {context: labels.context} : {})},
    trajectory,
    final: {
      outcome: last.tool === 'resolve' ? ('resolved' as const) : ('escalated' as const),
      summary: String(last.args.summary),
    },
    meta: {
      rule: conversation.finding.rule,
      rootCause: labels.rootCause as PlaybookExample['meta']['rootCause'],
      split: labels.split,
      source: labels.source,
    },
  }
  return {id: `${labels.split}-${sha256Hex(canonicalJson(body)).slice(0, 12)}`, ...body}
}

/** Runs one sandbox inventory through the rules playbook and returns its qualifying examples. */
async function examplesOfInventory(
  directory: string,
  split: 'train' | 'eval',
  seed: number,
  random: Random,
): Promise<{examples: PlaybookExample[]; skipped: number}> {
  const path = join(directory, `${split}-${seed}.db`)
  const {faults} = initInventory({
    path,
    ...SANDBOX_INVENTORY,
    seed,
    phrasings: split === 'eval' ? 'heldout' : 'train',
    idBase: split === 'eval' ? EVAL_ID_BASE : 0,
    force: true,
  })
  const backend = SqliteInventory.open(path)
  const engine = new RecordingEngine(new RulesEngine())
  const log = AuditLog.create(join(directory, 'logs'), `gen-${seed}`)
  try {
    const report = await runAudit({backend, engine, log, dryRun: true})
    const examples: PlaybookExample[] = []
    let skipped = 0
    for (const outcome of report.outcomes) {
      const conversation = engine.conversations.get(outcome.findingId)
      if (!conversation) continue // resolved by an earlier fix: no conversation to learn from
      const primary = faults.find((fault) => fault.rule === outcome.rule && fault.entity === outcome.entity)
      const secondary = faults.find((fault) =>
        fault.alsoDetected.some((other) => other.rule === outcome.rule && other.entity === outcome.entity),
      )
      const fault = primary ?? secondary
      const expectedOutcome = primary ? (primary.expected === 'fix' ? 'would_resolve' : 'escalated') : undefined
      const rootCause = primary ? primary.rootCause : outcome.rootCause
      const qualifies =
        fault !== undefined &&
        (expectedOutcome === undefined
          ? outcome.outcome === 'would_resolve' || outcome.outcome === 'escalated'
          : outcome.outcome === expectedOutcome) &&
        outcome.rootCause === rootCause &&
        VALID_ROOT_CAUSES.get(outcome.rule as RuleName)?.has(rootCause) === true
      const example = qualifies
        ? exampleFromConversation(conversation, {
            rootCause,
            split,
            source: 'generated:rules-playbook',
            context: {sandboxSeed: seed, phrasings: split === 'eval' ? 'heldout' : 'train'},
            random,
          })
        : undefined
      if (example) examples.push(example)
      else skipped++
    }
    return {examples, skipped}
  } finally {
    log.close()
    backend.close()
    rmSync(path, {force: true})
    rmSync(`${path}.faults.json`, {force: true})
  }
}

function checkCounts(options: GenerateOptions): void {
  for (const [name, value, min] of [
    ['count', options.count, 1],
    ['eval-count', options.evalCount, 0],
  ] as const) {
    if (!Number.isInteger(value) || value < min || value > 1_000_000)
      throw new UserError(`--${name} must be an integer from ${min} to 1000000, got ${value}`)
  }
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 2 ** 31)
    throw new UserError(`--seed must be an integer from 0 to ${2 ** 31}, got ${options.seed}`)
  if (resolve(options.out) === resolve(options.evalOut))
    throw new UserError('--out and --eval-out must be different files')
}

/** Generates the train and eval playbooks; both files are written atomically, or neither. */
export async function generateDataset(options: GenerateOptions): Promise<GenerateResult> {
  checkCounts(options)
  const directory = mkdtempSync(join(tmpdir(), 'invagent-generate-'))
  const result: GenerateResult = {
    seed: options.seed,
    train: {file: resolve(options.out), examples: 0, inventories: 0},
    eval: {file: resolve(options.evalOut), examples: 0, inventories: 0},
    byRootCause: {},
    skipped: 0,
  }
  const written: string[] = []
  try {
    const root = new Random(options.seed)
    for (const split of ['train', 'eval'] as const) {
      const target = split === 'train' ? options.count : options.evalCount
      const seeds = root.fork(split === 'train' ? 11 : 12)
      const phrasing = root.fork(split === 'train' ? 21 : 22)
      const examples: PlaybookExample[] = []
      let inventories = 0
      while (examples.length < target) {
        if (inventories > 20 + target)
          throw new Error(
            `generation stalled: ${examples.length} of ${target} ${split} examples after ${inventories} inventories`,
          )
        const seed = seeds.int(1, 2 ** 31 - 1)
        const batch = await examplesOfInventory(directory, split, seed, phrasing)
        inventories++
        result.skipped += batch.skipped
        examples.push(...batch.examples.slice(0, target - examples.length))
        options.onProgress?.(split, examples.length, target)
      }
      for (const example of examples) {
        const {problems} = checkExample(example, 'playbook')
        if (problems.length > 0)
          throw new Error(`a generated example does not validate (${example.id}): ${problems[0].message}`)
        const entry = (result.byRootCause[`${example.meta.rule}/${example.meta.rootCause}`] ??= {train: 0, eval: 0})
        entry[split]++
      }
      const file = split === 'train' ? result.train.file : result.eval.file
      mkdirSync(dirname(file), {recursive: true})
      const temporary = `${file}.tmp-${process.pid}`
      writeFileSync(
        temporary,
        examples.map((example) => JSON.stringify(example)).join('\n') + (examples.length > 0 ? '\n' : ''),
      )
      written.push(temporary)
      result[split].examples = examples.length
      result[split].inventories = inventories
    }
    renameSync(written[0], result.train.file)
    renameSync(written[1], result.eval.file)
    return result
  } finally {
    for (const temporary of written) rmSync(temporary, {force: true})
    rmSync(directory, {recursive: true, force: true})
  }
}
