import {readFileSync} from 'node:fs'

import {z} from 'zod'

import {didYouMean, UserError} from '../errors.js'
import {maxFaults} from '../simulate/generate.js'
import {ROOT_CAUSES, RULES, rootCausesOf, type RootCauseInfo, type RuleName} from '../tools/catalogue.js'
import {canonicalJson, sha256Hex} from '../util/canonical-json.js'

/*
 * An evaluation suite: a versioned list of scenarios. A scenario is a seeded inventory (built by
 * the simulator, so the file stays small and the data reproducible) with the faults to inject;
 * the ground truth (the gold end state, or "must escalate") is computed from it at run time.
 */

export const FaultRef = z.strictObject({
  rule: z.enum(RULES),
  rootCause: z.string().min(1),
})

export const Scenario = z.strictObject({
  /** Unique within the suite; names the test case in JUnit and the row in reports. */
  id: z.string().min(1),
  description: z.string().optional(),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1),
  parts: z.number().int().min(2).max(100_000).default(24),
  days: z.number().int().min(1).max(3650).default(10),
  /** The faults to inject, each into a part of its own; none makes a clean inventory. */
  faults: z.array(FaultRef).default([]),
  /**
   * Instead of `faults`: this many faults planned by the simulator from the seed, every root
   * cause once per round, as `invagent inventory init --faults N` plans them.
   */
  plannedFaults: z.number().int().min(1).optional(),
  /** Entity numbering starts after this (transactions after ten times this), as in the dataset's held-out split. */
  idBase: z.number().int().min(0).max(100_000_000).default(0),
  /** Integration-message wording: "heldout" phrasings are never used for training data. */
  phrasings: z.enum(['train', 'heldout']).default('train'),
  /** Prompt-injection text in the faults' part names and integration messages. */
  hostileText: z.boolean().default(false),
  tags: z.array(z.string().min(1)).default([]),
})

export const Suite = z.strictObject({
  name: z.string().min(1),
  version: z.number().int().min(1),
  description: z.string().optional(),
  scenarios: z.array(Scenario).min(1),
})

export type FaultRef = z.infer<typeof FaultRef>
export type Scenario = z.infer<typeof Scenario>
export type Suite = z.infer<typeof Suite>

/** The catalogue entry of a fault reference, or undefined when the root cause does not belong to the rule. */
export function variantOf(fault: FaultRef): RootCauseInfo | undefined {
  return ROOT_CAUSES.find((entry) => entry.rule === fault.rule && entry.rootCause === fault.rootCause)
}

/** Problems zod cannot see: unknown root causes, duplicate ids, more faults than parts allow. */
function semanticProblems(suite: Suite): string[] {
  const problems: string[] = []
  const seen = new Map<string, number>()
  suite.scenarios.forEach((scenario, index) => {
    const at = `scenarios[${index}] ("${scenario.id}")`
    const first = seen.get(scenario.id)
    if (first !== undefined) problems.push(`${at}: id already used by scenarios[${first}]`)
    else seen.set(scenario.id, index)
    scenario.faults.forEach((fault, faultIndex) => {
      if (variantOf(fault)) return
      const known = rootCausesOf(fault.rule as RuleName).map((entry) => entry.rootCause)
      const suggestion =
        didYouMean(fault.rootCause, known) ??
        known.find((name) => name.startsWith(fault.rootCause) || name.includes(fault.rootCause))
      problems.push(
        `${at}.faults[${faultIndex}]: "${fault.rootCause}" is not a root cause of ${fault.rule}${suggestion ? ` — did you mean "${suggestion}"?` : ''} (known: ${known.join(', ')})`,
      )
    })
    if (scenario.plannedFaults !== undefined && scenario.faults.length > 0)
      problems.push(`${at}: give either faults or plannedFaults, not both`)
    const count = scenario.plannedFaults ?? scenario.faults.length
    if (count > maxFaults(scenario.parts))
      problems.push(`${at}: ${count} faults need at least ${count * 2} parts, got ${scenario.parts}`)
  })
  return problems
}

function invalidSuite(source: string, problems: string[]): UserError {
  const lines = problems.slice(0, 10).map((problem) => `${source}: ${problem}`)
  const message =
    problems.length === 1
      ? lines[0]
      : `${source} is not a valid evaluation suite (${problems.length} problems):\n  ${lines.join('\n  ')}`
  return new UserError(message, {
    code: 'SUITE_INVALID',
    suggestions: [
      'The suite format is documented in datasets/suites/README.md; datasets/suites/default.json is a complete example.',
    ],
  })
}

/** Parses and checks a suite; `source` names it in error messages, compiler-style (`file: where: what`). */
export function parseSuite(value: unknown, source: string): Suite {
  const parsed = Suite.safeParse(value)
  if (!parsed.success)
    throw invalidSuite(
      source,
      parsed.error.issues.map(
        (issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`,
      ),
    )
  const problems = semanticProblems(parsed.data)
  if (problems.length > 0) throw invalidSuite(source, problems)
  return parsed.data
}

/** Reads a suite file (JSON). */
export function loadSuite(path: string): Suite {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new UserError(`cannot read the suite ${path}: ${(error as Error).message}`, {
      code: 'SUITE_UNREADABLE',
      suggestions: ['Check --suite, or use the shipped datasets/suites/default.json.'],
    })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new UserError(`${path} is not JSON: ${(error as Error).message}`, {
      code: 'SUITE_INVALID',
      suggestions: ['A suite is one JSON object; see datasets/suites/README.md.'],
    })
  }
  return parseSuite(value, path)
}

/**
 * The rules and `rule/root_cause` keys a scenario is known to contain before it is built: its
 * listed faults, or every one for a fault plan of at least one full round.
 */
export function faultKeysOf(scenario: Scenario): string[] {
  const causes =
    scenario.plannedFaults !== undefined
      ? scenario.plannedFaults >= ROOT_CAUSES.length
        ? ROOT_CAUSES
        : []
      : scenario.faults
  return [...new Set(causes.flatMap((fault) => [fault.rule, `${fault.rule}/${fault.rootCause}`]))]
}

/** Identifies a suite's content: results are comparable only between runs of the same hash. */
export function suiteHash(suite: Suite): string {
  return sha256Hex(canonicalJson(suite)).slice(0, 16)
}
