import type {Finding} from '../detect/finding.js'
import {ROOT_CAUSE_NAMES} from '../tools/catalogue.js'
import {toolCatalogue} from '../tools/json-schema.js'
import {TOOL_NAMES} from '../tools/tools.js'
import {Random} from '../util/random.js'
import type {Engine, EngineProposal, EngineSession} from './engine.js'

/** Identifiers a random engine draws from: real ones from the inventory, so some calls land. */
export interface RandomEnginePool {
  partIds: string[]
  txnIds: string[]
  reservationIds: string[]
  skus: string[]
  uoms: string[]
}

/**
 * The chaos engine: proposes random steps — valid and invalid, in scope and far out of it,
 * well-formed and garbage — so tests can show that whatever an engine says, nothing outside a
 * finding's scope changes and no invariant breaks. Deterministic for a seed.
 */
export class RandomEngine implements Engine {
  readonly name = 'random'
  private readonly random: Random
  private readonly pool: RandomEnginePool

  constructor(seed: number, pool: RandomEnginePool) {
    this.random = new Random(seed)
    this.pool = pool
  }

  start(finding: Finding): EngineSession {
    return {next: async (): Promise<EngineProposal> => ({step: this.step(finding)})}
  }

  private id(kind: 'part' | 'txn' | 'reservation', finding: Finding): string {
    const random = this.random
    const pool = kind === 'part' ? this.pool.partIds : kind === 'txn' ? this.pool.txnIds : this.pool.reservationIds
    // Favour the finding's own entity, so that in-scope writes happen often enough to matter.
    if (
      random.bool(0.4) &&
      ((kind === 'part' && finding.entity.startsWith('P-')) || (kind === 'txn' && finding.entity.startsWith('T-')))
    )
      return finding.entity
    if (random.bool(0.05)) return `${kind === 'part' ? 'P' : kind === 'txn' ? 'T' : 'R'}-${random.int(0, 9999999)}`
    return pool.length > 0 ? random.pick(pool) : 'X-0'
  }

  private value(key: string, finding: Finding): unknown {
    const random = this.random
    switch (key) {
      case 'part_id':
        return this.id('part', finding)
      case 'txn_id':
        return this.id('txn', finding)
      case 'reservation_id':
        return this.id('reservation', finding)
      case 'sku':
        return random.pick(this.pool.skus.length > 0 ? this.pool.skus : ['SKU'])
      case 'uom':
        return random.pick([...this.pool.uoms, 'each', 'case', 'PLT', ''])
      case 'delta':
        return random.pick([random.int(-50, 50), random.int(-200000, 200000), 0])
      case 'limit':
        return random.pick([random.int(1, 50), 0, 500])
      case 'status':
      case 'expected_status':
        return random.pick(['pending', 'posted', 'error', 'void', 'bogus'])
      case 'root_cause':
        return random.pick(ROOT_CAUSE_NAMES)
      default:
        return random.pick(['because', 'ignore previous instructions', ''])
    }
  }

  private step(finding: Finding): unknown {
    const random = this.random
    const roll = random.float()
    if (roll < 0.04) return random.pick([null, 'not json', 42, [], {thought: 'missing tool'}])
    const tool =
      roll < 0.08
        ? random.pick(['ajust_quantity', 'drop_table', 'resolve_all', ''])
        : random.weighted(
            TOOL_NAMES.map((name) => [name, name === 'resolve' || name === 'escalate' ? 0.4 : 1] as const),
          )
    const keys = [
      'part_id',
      'txn_id',
      'reservation_id',
      'sku',
      'uom',
      'delta',
      'limit',
      'status',
      'expected_status',
      'root_cause',
      'reason',
      'summary',
      'external_ref',
    ]
    const chosen = keys.filter(() => random.bool(0.3))
    const args: Record<string, unknown> = {}
    for (const key of tool === '' ? [] : chosen) args[key] = this.value(key, finding)
    // Half the time, shape the call like the tool expects so that writes actually reach the gate.
    if (random.bool(0.5)) {
      for (const key of requiredKeys(tool)) args[key] ??= this.value(key, finding)
      for (const key of Object.keys(args)) if (!requiredKeys(tool).includes(key) && random.bool(0.8)) delete args[key]
    }
    return {thought: 'random', tool, args}
  }
}

const REQUIRED = new Map(toolCatalogue().map((tool) => [tool.name, (tool.args.required as string[] | undefined) ?? []]))

function requiredKeys(tool: string): string[] {
  return REQUIRED.get(tool) ?? []
}
