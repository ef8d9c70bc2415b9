import {EVAL_ID_BASE} from '../dataset/generate.js'
import {UserError} from '../errors.js'
import {ROOT_CAUSES, type RootCauseInfo} from '../tools/catalogue.js'
import {Random} from '../util/random.js'
import {parseSuite, type Scenario, type Suite} from './suite.js'

/*
 * A suite drawn from a seed (`invagent eval --scenarios N --seed S`). Scenario kinds repeat in
 * a fixed cycle of ten, so any N gets the same mix: six single-fault inventories (half with
 * held-out phrasings), two multi-fault ones, one clean one, one with prompt-injection text. Root
 * causes are dealt from a shuffled deck of all 26, reshuffled when it runs out, so N >= 26
 * single and multi faults cover every rule and root cause. Entities are numbered like the
 * dataset's held-out split, so no id of an eval inventory appears in training data.
 */

type Kind = 'single' | 'single-heldout' | 'clean' | 'multi' | 'hostile'

const CYCLE: readonly Kind[] = [
  'single',
  'single-heldout',
  'clean',
  'single',
  'multi',
  'single-heldout',
  'hostile',
  'single',
  'single-heldout',
  'multi',
]

export const MAX_GENERATED_SCENARIOS = 100_000

class Deck {
  private cards: RootCauseInfo[] = []
  private readonly random: Random

  constructor(random: Random) {
    this.random = random
  }

  draw(): RootCauseInfo {
    if (this.cards.length === 0) this.cards = this.random.shuffle([...ROOT_CAUSES])
    return this.cards.pop()!
  }
}

function tagsOf(kind: Kind, faults: RootCauseInfo[], heldout: boolean): string[] {
  const base = kind === 'single-heldout' ? 'single' : kind
  return [
    base,
    ...(heldout ? ['heldout'] : []),
    ...(faults.some((fault) => fault.expected === 'escalate') ? ['escalate'] : []),
  ]
}

export function generateSuite(options: {scenarios: number; seed: number}): Suite {
  const {scenarios: count, seed} = options
  if (!Number.isInteger(count) || count < 1 || count > MAX_GENERATED_SCENARIOS)
    throw new UserError(`--scenarios must be an integer from 1 to ${MAX_GENERATED_SCENARIOS}, got ${count}`)
  if (!Number.isInteger(seed) || seed < 0 || seed > 2 ** 32 - 1)
    throw new UserError(`--seed must be an integer from 0 to ${2 ** 32 - 1}, got ${seed}`)
  const random = new Random(seed)
  const deck = new Deck(random.fork(1))
  const seeds = random.fork(2)
  const scenarios: Scenario[] = []
  for (let index = 0; index < count; index++) {
    const kind = CYCLE[index % CYCLE.length]
    const faults = kind === 'clean' ? [] : kind === 'multi' ? [deck.draw(), deck.draw(), deck.draw()] : [deck.draw()]
    const heldout = kind === 'single-heldout' || kind === 'hostile' || (kind === 'multi' && index % 20 >= 10)
    const number = String(index + 1).padStart(String(count).length, '0')
    const name =
      kind === 'clean'
        ? 'clean'
        : kind === 'multi'
          ? `multi-${faults.length}`
          : `${kind === 'hostile' ? 'hostile' : 'single'}-${faults[0].rule}-${faults[0].rootCause}`
    scenarios.push({
      id: `${number}-${name}`,
      seed: seeds.int(0, 2 ** 32 - 1),
      parts: 24,
      days: 10,
      idBase: EVAL_ID_BASE,
      faults: faults.map((fault) => ({rule: fault.rule, rootCause: fault.rootCause})),
      phrasings: heldout ? 'heldout' : 'train',
      hostileText: kind === 'hostile',
      tags: tagsOf(kind, faults, heldout),
    })
  }
  return parseSuite(
    {
      name: `generated-${count}-seed-${seed}`,
      version: 1,
      description: `${count} scenarios drawn from seed ${seed}`,
      scenarios,
    },
    '--scenarios',
  )
}
