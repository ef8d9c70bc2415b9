import {z} from 'zod'

import type {InventoryReads, ScopeRows} from '../inventory/backend.js'
import {RULES} from '../tools/catalogue.js'
import {canonicalJson, sha256Hex} from '../util/canonical-json.js'
import {canonicalRows, diffRows, type PlanReads, type SeenLiveData} from './sandbox.js'
import type {FindingScope} from './scope.js'

/*
 * A plan: what the engine decided for one finding, made and validated in a sandbox, ready to be
 * applied in one short unit (docs/architecture.md, "Plan" and "Apply"). It is plain data, so it
 * can be parked for a person's approval and applied days later by another process, which first
 * checks that nothing it read has changed (the fingerprint).
 */

const impact = z.object({partId: z.string().nullable(), onHandDelta: z.number().int(), reservedDelta: z.number().int()})

export const PlannedWrite = z.object({
  tool: z.string(),
  args: z.record(z.string(), z.unknown()),
  impact,
  idempotencyKey: z.string(),
})
export type PlannedWrite = z.infer<typeof PlannedWrite>

const rowsSchema = z.object({
  parts: z.array(z.record(z.string(), z.unknown())),
  uom_conversions: z.array(z.record(z.string(), z.unknown())),
  sku_aliases: z.array(z.record(z.string(), z.unknown())),
  transactions: z.array(z.record(z.string(), z.unknown())),
  reservations: z.array(z.record(z.string(), z.unknown())),
})

export const PlanSchema = z.object({
  schemaVersion: z.literal(1),
  id: z.string(),
  runId: z.string(),
  findingId: z.string(),
  finding: z.object({
    rule: z.enum(RULES),
    entity: z.string(),
    severity: z.string(),
    evidence: z.record(z.string(), z.unknown()),
  }),
  /** The locator of the inventory the plan was made against. */
  inventory: z.string(),
  createdAt: z.string(),
  writes: z.array(PlannedWrite),
  rootCause: z.string(),
  summary: z.string(),
  validation: z.object({
    validated: z.boolean(),
    problems: z.array(z.string()),
    /** Findings in the scope before the plan: those may stay, nothing else may appear. */
    findingsBefore: z.array(z.string()),
  }),
  scope: z.object({
    partIds: z.array(z.string()),
    txnIds: z.array(z.string()),
    reservationIds: z.array(z.string()),
    remapTargets: z.record(z.string(), z.string()),
  }),
  /** What the plan read from the live inventory, to be read again before applying. */
  reads: z.object({
    selection: z.object({
      parts: z.array(z.string()),
      ledgers: z.array(z.string()),
      transactions: z.array(z.string()),
      externalRefs: z.array(z.string()),
    }),
    skus: z.array(z.string()),
    events: z.array(z.string()),
  }),
  /** sha256 over every live row and answer the plan read. */
  fingerprint: z.string(),
  /** The rows and answers as the plan saw them, so that a stale plan can say what changed. */
  seen: z.object({
    rows: rowsSchema,
    skus: z.record(z.string(), z.unknown()),
    events: z.record(z.string(), z.unknown()),
  }),
  evidenceDigest: z.string(),
  engine: z.object({
    name: z.string(),
    model: z.object({name: z.string().nullable(), path: z.string(), sha256: z.string().nullable()}).nullable(),
    promptVersion: z.string(),
  }),
  /** The largest stock movement of one write: what the approval bound is compared with. */
  maxImpact: z.number().int(),
  needsApproval: z.boolean(),
})
export type Plan = z.infer<typeof PlanSchema>

/** The digest of a plan as a whole: what an approval decision is recorded against. */
export function planDigest(plan: Plan): string {
  return sha256Hex(canonicalJson(plan))
}

export function evidenceDigest(evidence: unknown): string {
  return sha256Hex(canonicalJson(evidence))
}

export function impactSize(value: {onHandDelta: number; reservedDelta: number}): number {
  return Math.max(Math.abs(value.onHandDelta), Math.abs(value.reservedDelta))
}

export function fingerprintOf(seen: SeenLiveData): string {
  return sha256Hex(canonicalJson({rows: canonicalRows(seen.rows), skus: seen.skus, events: seen.events}))
}

/** Reads again, from `store`, everything a plan read: the same data gives the same fingerprint. */
export async function readAgain(store: InventoryReads, reads: PlanReads): Promise<SeenLiveData> {
  const rows = await store.readRows(reads.selection)
  const skus: SeenLiveData['skus'] = {}
  for (const sku of reads.skus) skus[sku] = await store.findPartsBySku(sku)
  const events: SeenLiveData['events'] = {}
  for (const txnId of reads.events) events[txnId] = await store.getIntegrationEvents(txnId)
  return {rows: canonicalRows(rows), skus, events}
}

/** What differs between what a plan saw and what is there now, in words. */
export function describeChanges(plan: Plan, now: SeenLiveData): string[] {
  const changes = diffRows(plan.seen.rows as unknown as ScopeRows, now.rows)
  for (const sku of plan.reads.skus) {
    if (canonicalJson(now.skus[sku]) !== canonicalJson(plan.seen.skus[sku]))
      changes.push(`SKU lookup ${sku}: different parts match`)
  }
  for (const txn of plan.reads.events) {
    if (canonicalJson(now.events[txn]) !== canonicalJson(plan.seen.events[txn]))
      changes.push(`integration events of ${txn}: changed`)
  }
  return changes
}

export function scopeToJson(scope: FindingScope): Plan['scope'] {
  return {
    partIds: [...scope.partIds].sort(),
    txnIds: [...scope.txnIds].sort(),
    reservationIds: [...scope.reservationIds].sort(),
    remapTargets: Object.fromEntries([...scope.remapTargets].sort()),
  }
}

export function scopeFromJson(scope: Plan['scope']): FindingScope {
  return {
    partIds: new Set(scope.partIds),
    txnIds: new Set(scope.txnIds),
    reservationIds: new Set(scope.reservationIds),
    remapTargets: new Map(Object.entries(scope.remapTargets)),
  }
}
