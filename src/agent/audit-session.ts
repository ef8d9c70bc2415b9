import {RulesEngine} from '../engines/rules-engine.js'
import type {Engine} from '../engines/engine.js'
import {UserError} from '../errors.js'
import {SqliteInventory} from '../inventory/sqlite-backend.js'
import type {RuleName} from '../tools/catalogue.js'
import {AuditLog} from './audit-log.js'
import {runAudit, type Approver, type AuditReport, type FindingOutcome} from './audit.js'
import type {PolicyOptions} from './policy.js'

export const ENGINES = ['rules'] as const
export type EngineName = (typeof ENGINES)[number]

export function createEngine(name: string): Engine {
  if (name === 'rules') return new RulesEngine()
  throw new UserError(`unknown engine "${name}"`, {suggestions: [`Engines: ${ENGINES.join(', ')}`]})
}

export interface AuditInventoryOptions {
  db: string
  logDirectory: string
  dryRun: boolean
  engine: string
  rules?: RuleName[]
  maxFindings?: number
  policy: PolicyOptions
  approver?: Approver
  onOutcome?: (outcome: FindingOutcome, index: number, total: number) => void
}

/** Opens the inventory and the run's log, audits, and closes both whatever happens. */
export async function auditInventory(options: AuditInventoryOptions): Promise<AuditReport> {
  const engine = createEngine(options.engine)
  const backend = SqliteInventory.open(options.db)
  let log: AuditLog | undefined
  try {
    log = AuditLog.create(options.logDirectory, crypto.randomUUID().slice(0, 8))
    return await runAudit({backend, engine, log, dryRun: options.dryRun, rules: options.rules, maxFindings: options.maxFindings, policy: options.policy, approver: options.approver, onOutcome: options.onOutcome})
  } finally {
    log?.close()
    backend.close()
    await engine.close?.()
  }
}
