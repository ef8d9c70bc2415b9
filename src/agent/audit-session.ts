import {RulesEngine} from '../engines/rules-engine.js'
import type {Engine} from '../engines/engine.js'
import {UserError} from '../errors.js'
import type {InventoryLocator} from '../inventory/locator.js'
import {openInventory} from '../inventory/open-inventory.js'
import type {RuleName} from '../tools/catalogue.js'
import {AuditLog} from './audit-log.js'
import {runAudit, type Approver, type AuditReport, type FindingOutcome} from './audit.js'
import type {PolicyOptions} from './policy.js'

export const ENGINES = ['rules', 'embedded', 'server'] as const
export type EngineName = (typeof ENGINES)[number]

export interface EngineOptions {
  engine: string
  /** GGUF path for the embedded engine. */
  model?: string
  /** Endpoint for the server engine. */
  url?: string
  threads?: number
  contextSize?: number
  maxTokens?: number
  seed?: number
  /** Bearer token for the server engine; INVAGENT_API_KEY when not given. */
  apiKey?: string
}

/** Creates the engine that decides the steps; the model engines are loaded only when asked for. */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  switch (options.engine) {
    case 'rules':
      return new RulesEngine()
    case 'embedded': {
      if (!options.model) throw new UserError('the embedded engine needs --model (a GGUF path or a name from `invagent models list`)')
      const {resolveModel} = await import('../models/registry.js')
      const {EmbeddedEngine} = await import('../engines/embedded-engine.js')
      return EmbeddedEngine.load({modelPath: resolveModel(options.model).path, threads: options.threads, contextSize: options.contextSize, maxTokens: options.maxTokens, seed: options.seed})
    }
    case 'server': {
      if (!options.url) throw new UserError('the server engine needs --url (e.g. http://127.0.0.1:8080, as printed by `invagent serve`)')
      const {ServerEngine} = await import('../engines/server-engine.js')
      const apiKey = options.apiKey ?? process.env.INVAGENT_API_KEY
      return ServerEngine.connect({url: options.url, maxTokens: options.maxTokens, seed: options.seed, apiKey})
    }
  }
  throw new UserError(`unknown engine "${options.engine}"`, {suggestions: [`Engines: ${ENGINES.join(', ')}`]})
}

export interface AuditInventoryOptions {
  inventory: InventoryLocator
  logDirectory: string
  dryRun: boolean
  engine: EngineOptions
  rules?: RuleName[]
  maxFindings?: number
  policy: PolicyOptions
  approver?: Approver
  onOutcome?: (outcome: FindingOutcome, index: number, total: number) => void
}

/** Opens the inventory and the run's log, audits, and closes both whatever happens. */
export async function auditInventory(options: AuditInventoryOptions): Promise<AuditReport> {
  const backend = await openInventory(options.inventory)
  let engine: Engine
  try {
    engine = await createEngine(options.engine)
  } catch (error) {
    await backend.close()
    throw error
  }
  let log: AuditLog | undefined
  try {
    log = AuditLog.create(options.logDirectory, crypto.randomUUID().slice(0, 8))
    return await runAudit({backend, engine, log, dryRun: options.dryRun, rules: options.rules, maxFindings: options.maxFindings, policy: options.policy, approver: options.approver, onOutcome: options.onOutcome})
  } finally {
    log?.close()
    await backend.close()
    await engine.close?.()
  }
}
