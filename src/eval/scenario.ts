import {copyFileSync, mkdirSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {InvagentError} from '../errors.js'
import {SqliteInventory} from '../inventory/sqlite-backend.js'
import {initInventory} from '../simulate/generate.js'
import type {InjectedFault} from '../simulate/faults.js'
import {getTool, type ToolArgs, type WriteToolName} from '../tools/tools.js'
import {applyWrite} from '../tools/write-tools.js'
import {allowedRows, type AllowedRows} from './scope.js'
import {readState, rowKey, type InventoryState} from './state.js'
import {variantOf, type Scenario} from './suite.js'

/** The suite itself is inconsistent (a gold fix that does not apply, a fault nobody detects): the eval cannot run. */
export class ScenarioBuildError extends InvagentError {
  constructor(scenario: string, message: string) {
    super(`scenario "${scenario}": ${message}`, {
      code: 'SCENARIO_BUILD',
      exitCode: 2,
      suggestions: [
        'This is a bug in the simulator or the suite, not in the engine under test; report it with the scenario.',
      ],
    })
  }
}

/** A scenario made real: its pristine inventory and everything a trial is scored against. */
export interface BuiltScenario {
  scenario: Scenario
  pristinePath: string
  pristine: InventoryState
  gold: InventoryState
  faults: InjectedFault[]
  /** Finding ids detected before any agent ran. */
  findingsBefore: string[]
  /** Finding ids that must end escalated: those of must-escalate faults (detected on the gold state too). */
  expectedEscalations: string[]
  allowed: AllowedRows
  /** Per fault id: the rows of the inventory that belong to it (for per-root-cause scoring). */
  faultRows: Map<string, Set<string>>
}

/** The finding ids a fault raises. */
export function findingsOf(fault: InjectedFault): string[] {
  return [`${fault.rule}:${fault.entity}`, ...fault.alsoDetected.map((other) => `${other.rule}:${other.entity}`)]
}

function rowsOfFault(state: InventoryState, fault: InjectedFault): Set<string> {
  const rows = new Set<string>()
  const part = fault.part ?? fault.entity
  rows.add(rowKey('parts', part))
  for (const [key, row] of state) {
    if ((key.startsWith('transactions:') || key.startsWith('reservations:')) && row.part_id === part) rows.add(key)
  }
  for (const finding of findingsOf(fault)) {
    const entity = finding.slice(finding.indexOf(':') + 1)
    if (entity.startsWith('T-')) rows.add(rowKey('transactions', entity))
  }
  return rows
}

/** Applies a fault's gold fix through the real backend, checking each call against its tool's schema. */
async function applyGoldFix(backend: SqliteInventory, fault: InjectedFault, scenario: string): Promise<void> {
  const calls = fault.goldFix ?? []
  if (fault.expected === 'fix' && calls.length === 0)
    throw new ScenarioBuildError(
      scenario,
      `fault ${fault.id} (${fault.rule}/${fault.rootCause}) must be fixed but records no gold fix`,
    )
  if (fault.expected === 'escalate' && calls.length > 0)
    throw new ScenarioBuildError(
      scenario,
      `fault ${fault.id} (${fault.rule}/${fault.rootCause}) must be escalated but records a gold fix`,
    )
  for (const [index, call] of calls.entries()) {
    const tool = getTool(call.tool)
    const args = tool?.effect === 'write' ? tool.args.safeParse(call.args) : undefined
    if (!tool || !args?.success)
      throw new ScenarioBuildError(
        scenario,
        `gold call ${call.tool} of fault ${fault.id} is not a valid write: ${args?.error?.message ?? 'unknown write tool'}`,
      )
    const result = await applyWrite(backend, call.tool, args.data as ToolArgs<WriteToolName>, {
      runId: 'gold',
      findingId: fault.id,
      idempotencyKey: `gold-${fault.id}-${index}`,
    })
    if (!result.applied)
      throw new ScenarioBuildError(
        scenario,
        `gold call ${call.tool} of fault ${fault.id} changed nothing: ${result.message}`,
      )
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((value, index) => value === [...b].sort()[index])
}

/**
 * Builds a scenario in `directory`: the seeded inventory with its faults, and its gold end state
 * — each fault's gold fix applied through the real backend to a copy. Checks that detection
 * finds every injected fault before, and exactly the must-escalate ones on the gold state.
 */
export async function buildScenario(scenario: Scenario, directory: string): Promise<BuiltScenario> {
  mkdirSync(directory, {recursive: true})
  const pristinePath = join(directory, 'pristine.db')
  const variants = scenario.plannedFaults === undefined ? scenario.faults.map((fault) => variantOf(fault)!) : undefined
  const init = initInventory({
    path: pristinePath,
    parts: scenario.parts,
    days: scenario.days,
    faults: scenario.plannedFaults ?? variants!.length,
    seed: scenario.seed,
    phrasings: scenario.phrasings,
    variants,
    idBase: scenario.idBase,
    hostileText: scenario.hostileText,
    force: true,
  })

  const pristineBackend = SqliteInventory.open(pristinePath, {readOnly: true})
  const findingsBefore = (await pristineBackend.detect()).map((finding) => finding.id)
  pristineBackend.close()
  const undetected = init.faults.filter((fault) => !findingsBefore.includes(`${fault.rule}:${fault.entity}`))
  if (undetected.length > 0)
    throw new ScenarioBuildError(
      scenario.id,
      `injected fault${undetected.length > 1 ? 's' : ''} not detected: ${undetected.map((fault) => `${fault.id} ${fault.rule}:${fault.entity}`).join(', ')}`,
    )

  const goldPath = join(directory, 'gold.db')
  copyFileSync(pristinePath, goldPath)
  const goldBackend = SqliteInventory.open(goldPath)
  let remaining: string[]
  try {
    for (const fault of init.faults) await applyGoldFix(goldBackend, fault, scenario.id)
    remaining = (await goldBackend.detect()).map((finding) => finding.id)
  } finally {
    goldBackend.close()
  }
  const expectedEscalations = init.faults.filter((fault) => fault.expected === 'escalate').flatMap(findingsOf)
  if (!sameSet(remaining, expectedEscalations)) {
    throw new ScenarioBuildError(
      scenario.id,
      `the gold state leaves findings [${remaining.join(', ')}] where exactly the must-escalate ones [${expectedEscalations.join(', ')}] were expected`,
    )
  }
  const gold = readState(goldPath)
  rmSync(goldPath, {force: true})
  const pristine = readState(pristinePath)
  return {
    scenario,
    pristinePath,
    pristine,
    gold,
    faults: init.faults,
    findingsBefore,
    expectedEscalations,
    allowed: allowedRows(
      pristinePath,
      findingsBefore.map((id) => ({rule: id.slice(0, id.indexOf(':')), entity: id.slice(id.indexOf(':') + 1)})),
    ),
    faultRows: new Map(init.faults.map((fault) => [fault.id, rowsOfFault(pristine, fault)])),
  }
}
