import {randomUUID} from 'node:crypto'

import {createEngineWithIdentity, type EngineOptions} from '../engines/create-engine.js'
import type {Engine} from '../engines/engine.js'
import type {InventoryBackend} from '../inventory/backend.js'
import {absoluteLocator, openInventory, type LocatorInput} from '../inventory/open-inventory.js'
import type {StateStore} from '../state/state-store.js'
import {openStateStore} from '../state/open-state.js'
import type {RuleName} from '../tools/catalogue.js'
import {AuditLog} from './audit-log.js'
import {runAudit, type Approver, type AuditReport, type FindingOutcome} from './audit.js'
import type {PolicyOptions} from './policy.js'

export interface AuditInventoryOptions {
  /** The inventory: a locator (SQLite path, sqlite:PATH, postgres://…, http(s)://…) or a parsed one. */
  inventory: LocatorInput
  /** The state store: a SQLite path or a postgres:// URL (docs/architecture.md, "State store"). */
  state: string
  logDirectory: string
  dryRun: boolean
  engine: EngineOptions
  rules?: RuleName[]
  maxFindings?: number
  policy: PolicyOptions
  approver?: Approver
  approveAll?: boolean
  approvalTtlMs?: number
  onOutcome?: (outcome: FindingOutcome, index: number, total: number) => void
}

/** The exit code of an audit: 1 when any finding failed, 0 otherwise (docs/architecture.md, "Outcomes"). */
export function auditExitCode(report: AuditReport): number {
  return report.summary.failed > 0 ? 1 : 0
}

/**
 * Opens the inventory, the state store and the run's log under one run id, refuses apply mode on
 * an inventory it cannot write before any work, audits, and closes everything whatever happens.
 */
export async function auditInventory(options: AuditInventoryOptions): Promise<AuditReport> {
  const runId = randomUUID().slice(0, 8)
  const opened: {backend?: InventoryBackend; state?: StateStore; engine?: Engine; log?: AuditLog} = {}
  let completed = false
  try {
    opened.backend = await openInventory(options.inventory)
    if (!options.dryRun) await opened.backend.assertWritable()
    opened.state = await openStateStore(options.state)
    const created = await createEngineWithIdentity(options.engine)
    opened.engine = created.engine
    opened.log = AuditLog.create(options.logDirectory, runId)
    await opened.state.recordRunStarted({
      id: runId,
      inventory: opened.backend.location,
      engine: created.identity.name,
      dryRun: options.dryRun,
      startedAt: new Date().toISOString(),
      logFile: opened.log.file,
    })
    const report = await runAudit({
      backend: opened.backend,
      engine: created.engine,
      log: opened.log,
      dryRun: options.dryRun,
      runId,
      rules: options.rules,
      maxFindings: options.maxFindings,
      policy: options.policy,
      approver: options.approver,
      approveAll: options.approveAll,
      inventoryLocator: absoluteLocator(options.inventory),
      state: opened.state,
      approvalTtlMs: options.approvalTtlMs,
      engineIdentity: created.identity,
      onOutcome: options.onOutcome,
    })
    await opened.state.recordRunFinished(runId, report.summary, auditExitCode(report))
    completed = true
    return report
  } finally {
    // Each is released even when one before it fails (a log that cannot be written on a full disk
    // must not leave connections or a llama-server behind). A failure to close is reported only when
    // nothing failed before it.
    const failure = await closeAll([
      () => opened.log?.close(),
      () => opened.state?.close(),
      () => opened.backend?.close(),
      () => opened.engine?.close?.(),
    ])
    if (failure && completed) throw failure.error
  }
}

/** Runs every step, in order, whatever happens to the others; returns the first failure, if any. */
async function closeAll(steps: Array<() => unknown>): Promise<{error: unknown} | undefined> {
  let failure: {error: unknown} | undefined
  for (const step of steps) {
    try {
      await step()
    } catch (error) {
      failure ??= {error}
    }
  }
  return failure
}
