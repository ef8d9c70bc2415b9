import type {DoctorCheck, DoctorReport} from '../llama/doctor.js'
import {inspectInventory, type InventoryReport} from './inspect-inventory.js'
import type {InventoryLocator, LocatorSource} from './locator.js'

export type DoctorWithInventory = Omit<DoctorReport, 'checks'> & {
  checks: Array<Omit<DoctorCheck, 'id'> & {id: DoctorCheck['id'] | 'inventory'}>
  inventory: InventoryReport
}

/**
 * Adds the inventory to doctor's report. An inventory that is named but cannot be used is
 * missing (exit 3); the demo's default path with nothing there yet is only a warning, since the
 * first `audit` creates it.
 */
export async function withInventoryCheck(
  report: DoctorReport,
  locator: InventoryLocator,
  source: LocatorSource,
): Promise<DoctorWithInventory> {
  const inventory = await inspectInventory(locator, source)
  const kind = {sqlite: 'SQLite file', postgres: 'PostgreSQL', http: 'HTTP'}[inventory.kind]
  const what = `${kind} ${inventory.locator} (from ${source})`
  let check: DoctorWithInventory['checks'][number]
  if (inventory.error !== undefined) {
    const onlyNotCreatedYet = source === 'default' && !inventory.reachable
    check = {
      id: 'inventory',
      status: onlyNotCreatedYet ? 'warn' : 'missing',
      detail: `${what}: ${inventory.error}`,
      nextStep: inventory.nextStep,
    }
  } else {
    const rows = `${inventory.parts} parts, ${inventory.transactions} transactions`
    const indexes = inventory.missingIndexes.length > 0 ? `; lacks indexes ${inventory.missingIndexes.join(', ')}` : ''
    check = {
      id: 'inventory',
      status: indexes ? 'warn' : 'ok',
      detail: `${what}: ${inventory.server}, ${rows}${indexes}`,
      nextStep: inventory.nextStep,
    }
  }
  const checks = [...report.checks, check]
  return {...report, checks, ok: checks.every((item) => item.status !== 'missing'), inventory}
}
