import {
  ToolFailure,
  type InventoryBackend,
  type InventoryReads,
  type WriteContext,
  type WriteImpact,
} from '../inventory/backend.js'
import {canonicalJson} from '../util/canonical-json.js'
import type {ToolArgs, TransactionRecord, WriteResult, WriteToolName} from './tools.js'

/*
 * What each write tool means, written once over the primitive operations every backend offers
 * (docs/architecture.md, "Layers"): its preview (the stock it would move, for bounds and approval),
 * its effect, and the entities it touches (for the scope check). A backend implements data access;
 * it never learns what "reprocess" means. Every write runs under an idempotency key.
 */

/** The entities one write touches; the policy gate checks each against the finding's scope. */
export interface WriteTargets {
  transactions: string[]
  parts: string[]
  reservations: string[]
  /** A remap names the part a transaction is pointed at: it must be the one its SKU resolves to. */
  remap?: {txnId: string; partId: string}
}

export interface WriteTool<N extends WriteToolName> {
  targets(args: ToolArgs<N>): WriteTargets
  preview(store: InventoryReads, args: ToolArgs<N>): Promise<WriteImpact>
  /** Checks, then writes through primitives. A ToolFailure means nothing was written. */
  apply(store: InventoryBackend, args: ToolArgs<N>, context: WriteContext): Promise<WriteResult>
}

const none = {transactions: [], parts: [], reservations: []}
const onTransaction = (txnId: string): WriteTargets => ({...none, transactions: [txnId]})
const onPart = (partId: string): WriteTargets => ({...none, parts: [partId]})

async function caches(
  store: InventoryReads,
  partId: string | null,
): Promise<Pick<WriteResult, 'on_hand' | 'reserved'>> {
  if (partId === null) return {on_hand: null, reserved: null}
  try {
    const part = await store.getPart(partId)
    return {on_hand: part.on_hand, reserved: part.reserved}
  } catch (error) {
    if (error instanceof ToolFailure) return {on_hand: null, reserved: null}
    throw error
  }
}

async function partExists(store: InventoryReads, partId: string | null): Promise<boolean> {
  if (partId === null) return false
  try {
    await store.getPart(partId)
    return true
  } catch (error) {
    if (error instanceof ToolFailure) return false
    throw error
  }
}

/** The stock delta of a transaction were it in `uom` and pointed at `partId`: null when no factor is known. */
async function deltaWith(
  store: InventoryReads,
  txn: TransactionRecord,
  partId: string | null,
  uom: string,
): Promise<number | null> {
  if (partId === null) return null
  let part
  try {
    part = await store.getPart(partId)
  } catch (error) {
    if (error instanceof ToolFailure) return null
    throw error
  }
  if (uom === part.uom) return txn.qty
  const conversion = part.conversions.find((candidate) => candidate.uom === uom)
  return conversion ? txn.qty * conversion.factor : null
}

const signed = (value: number) => `${value >= 0 ? '+' : ''}${value}`

export const WRITE_TOOLS: {[N in WriteToolName]: WriteTool<N>} = {
  reprocess_transaction: {
    targets: (args) => onTransaction(args.txn_id),
    async preview(store, args) {
      const txn = await store.getTransaction(args.txn_id)
      return {partId: txn.part_id, onHandDelta: txn.status === 'posted' ? 0 : (txn.stock_delta ?? 0), reservedDelta: 0}
    },
    async apply(store, args) {
      const txn = await store.getTransaction(args.txn_id)
      if (txn.status === 'posted')
        return {applied: false, message: `${txn.id} is already posted`, ...(await caches(store, txn.part_id))}
      if (txn.status === 'void') throw new ToolFailure(`${txn.id} is void and cannot be reprocessed`)
      if (!(await partExists(store, txn.part_id))) {
        throw new ToolFailure(
          `reprocess failed: ${txn.id} points at no existing part (sku "${txn.sku}"); remap it first`,
        )
      }
      if (txn.stock_delta === null) {
        throw new ToolFailure(
          `reprocess failed: unit "${txn.uom}" has no conversion for part ${txn.part_id}; correct the unit first`,
        )
      }
      await store.updateTransaction(txn.id, {status: 'posted', posted_at: store.clock()})
      await store.addToPartCaches(txn.part_id!, txn.stock_delta, 0)
      return {
        applied: true,
        message: `${txn.id} posted (${signed(txn.stock_delta)})`,
        ...(await caches(store, txn.part_id)),
      }
    },
  },
  set_transaction_status: {
    targets: (args) => onTransaction(args.txn_id),
    async preview(store, args) {
      const txn = await store.getTransaction(args.txn_id)
      return {partId: txn.part_id, onHandDelta: 0, reservedDelta: 0}
    },
    async apply(store, args) {
      const txn = await store.getTransaction(args.txn_id)
      if (txn.status !== args.expected_status)
        throw new ToolFailure(`${txn.id} is ${txn.status}, not ${args.expected_status}: nothing changed`)
      if (txn.status === args.status)
        return {applied: false, message: `${txn.id} is already ${txn.status}`, ...(await caches(store, txn.part_id))}
      await store.updateTransaction(txn.id, {status: args.status})
      return {applied: true, message: `${txn.id} ${txn.status} → ${args.status}`, ...(await caches(store, txn.part_id))}
    },
  },
  void_transaction: {
    targets: (args) => onTransaction(args.txn_id),
    async preview(store, args) {
      const txn = await store.getTransaction(args.txn_id)
      return {partId: txn.part_id, onHandDelta: txn.status === 'posted' ? -(txn.stock_delta ?? 0) : 0, reservedDelta: 0}
    },
    async apply(store, args) {
      const txn = await store.getTransaction(args.txn_id)
      if (txn.status === 'void')
        return {applied: false, message: `${txn.id} is already void`, ...(await caches(store, txn.part_id))}
      await store.updateTransaction(txn.id, {status: 'void'})
      if (
        txn.status === 'posted' &&
        txn.part_id !== null &&
        txn.stock_delta !== null &&
        (await partExists(store, txn.part_id))
      ) {
        await store.addToPartCaches(txn.part_id, -txn.stock_delta, 0)
      }
      return {applied: true, message: `${txn.id} voided`, ...(await caches(store, txn.part_id))}
    },
  },
  recompute_on_hand: {
    targets: (args) => onPart(args.part_id),
    async preview(store, args) {
      const balance = await store.getLedgerBalance(args.part_id)
      return {partId: balance.part_id, onHandDelta: balance.ledger_balance - balance.on_hand, reservedDelta: 0}
    },
    async apply(store, args) {
      const balance = await store.getLedgerBalance(args.part_id)
      const part = balance.part_id
      if (balance.ledger_balance === balance.on_hand) {
        return {
          applied: false,
          message: `${part} on_hand already equals the ledger (${balance.ledger_balance})`,
          ...(await caches(store, part)),
        }
      }
      await store.addToPartCaches(part, balance.ledger_balance - balance.on_hand, 0)
      return {
        applied: true,
        message: `${part} on_hand ${balance.on_hand} → ${balance.ledger_balance}`,
        ...(await caches(store, part)),
      }
    },
  },
  recompute_reserved: {
    targets: (args) => onPart(args.part_id),
    async preview(store, args) {
      const balance = await store.getLedgerBalance(args.part_id)
      return {partId: balance.part_id, onHandDelta: 0, reservedDelta: balance.active_reserved - balance.reserved}
    },
    async apply(store, args) {
      const balance = await store.getLedgerBalance(args.part_id)
      const part = balance.part_id
      if (balance.active_reserved === balance.reserved) {
        return {
          applied: false,
          message: `${part} reserved already equals active reservations (${balance.reserved})`,
          ...(await caches(store, part)),
        }
      }
      await store.addToPartCaches(part, 0, balance.active_reserved - balance.reserved)
      return {
        applied: true,
        message: `${part} reserved ${balance.reserved} → ${balance.active_reserved}`,
        ...(await caches(store, part)),
      }
    },
  },
  release_reservation: {
    targets: (args) => ({...none, reservations: [args.reservation_id]}),
    async preview(store, args) {
      const reservation = await store.getReservation(args.reservation_id)
      return {
        partId: reservation.part_id,
        onHandDelta: 0,
        reservedDelta: reservation.status === 'active' ? -reservation.qty : 0,
      }
    },
    async apply(store, args) {
      const reservation = await store.getReservation(args.reservation_id)
      if (reservation.status !== 'active') {
        return {
          applied: false,
          message: `${reservation.id} is already ${reservation.status}`,
          ...(await caches(store, reservation.part_id)),
        }
      }
      await store.setReservationStatus(reservation.id, 'released')
      await store.addToPartCaches(reservation.part_id, 0, -reservation.qty)
      return {
        applied: true,
        message: `${reservation.id} released (${reservation.qty})`,
        ...(await caches(store, reservation.part_id)),
      }
    },
  },
  correct_transaction_uom: {
    targets: (args) => onTransaction(args.txn_id),
    async preview(store, args) {
      const txn = await store.getTransaction(args.txn_id)
      const next = (await deltaWith(store, txn, txn.part_id, args.uom)) ?? 0
      return {
        partId: txn.part_id,
        onHandDelta: txn.status === 'posted' ? next - (txn.stock_delta ?? 0) : 0,
        reservedDelta: 0,
      }
    },
    async apply(store, args) {
      const txn = await store.getTransaction(args.txn_id)
      if (txn.part_id === null) throw new ToolFailure(`${txn.id} has no part; remap it before correcting its unit`)
      const next = await deltaWith(store, txn, txn.part_id, args.uom)
      if (next === null)
        throw new ToolFailure(
          `unit "${args.uom}" is neither the unit of ${txn.part_id} nor one it has a conversion for`,
        )
      if (args.uom === txn.uom)
        return {applied: false, message: `${txn.id} is already in ${args.uom}`, ...(await caches(store, txn.part_id))}
      await store.updateTransaction(txn.id, {uom: args.uom})
      if (txn.status === 'posted') await store.addToPartCaches(txn.part_id, next - (txn.stock_delta ?? 0), 0)
      return {applied: true, message: `${txn.id} unit ${txn.uom} → ${args.uom}`, ...(await caches(store, txn.part_id))}
    },
  },
  remap_transaction_part: {
    targets: (args) => ({...none, transactions: [args.txn_id], remap: {txnId: args.txn_id, partId: args.part_id}}),
    async preview(store, args) {
      const txn = await store.getTransaction(args.txn_id)
      const next = (await deltaWith(store, txn, args.part_id, txn.uom)) ?? 0
      return {partId: args.part_id, onHandDelta: txn.status === 'posted' ? next : 0, reservedDelta: 0}
    },
    async apply(store, args) {
      const txn = await store.getTransaction(args.txn_id)
      const target = await store.getPart(args.part_id)
      if (txn.part_id === target.id)
        return {
          applied: false,
          message: `${txn.id} already points at ${target.id}`,
          ...(await caches(store, target.id)),
        }
      const next = await deltaWith(store, txn, target.id, txn.uom)
      if (txn.status === 'posted' && next === null)
        throw new ToolFailure(`unit "${txn.uom}" has no conversion for ${target.id}; correct the unit first`)
      const previousExists = await partExists(store, txn.part_id)
      await store.updateTransaction(txn.id, {part_id: target.id})
      if (txn.status === 'posted') {
        if (previousExists && txn.stock_delta !== null) await store.addToPartCaches(txn.part_id!, -txn.stock_delta, 0)
        await store.addToPartCaches(target.id, next!, 0)
      }
      return {
        applied: true,
        message: `${txn.id} remapped ${txn.part_id ?? '(none)'} → ${target.id}`,
        ...(await caches(store, target.id)),
      }
    },
  },
  adjust_quantity: {
    targets: (args) => onPart(args.part_id),
    async preview(store, args) {
      await store.getPart(args.part_id)
      return {partId: args.part_id, onHandDelta: args.delta, reservedDelta: 0}
    },
    async apply(store, args, context) {
      const part = await store.getPart(args.part_id)
      if (args.delta === 0)
        return {applied: false, message: 'a zero adjustment changes nothing', ...(await caches(store, part.id))}
      const id = `T-ADJ-${context.idempotencyKey.slice(0, 12)}`
      const now = store.clock()
      await store.insertTransaction({
        id,
        part_id: part.id,
        sku: part.sku,
        kind: 'adjustment',
        qty: args.delta,
        uom: part.uom,
        status: 'posted',
        source: 'invagent',
        external_ref: `ADJ-${context.idempotencyKey.slice(0, 16)}`,
        created_at: now,
        posted_at: now,
      })
      await store.addToPartCaches(part.id, args.delta, 0)
      return {applied: true, message: `${part.id} adjusted by ${args.delta} (${id})`, ...(await caches(store, part.id))}
    },
  },
}

function writeTool(tool: WriteToolName): WriteTool<WriteToolName> {
  const found = WRITE_TOOLS[tool] as WriteTool<WriteToolName> | undefined
  if (!found) throw new ToolFailure(`unknown write tool ${tool}`)
  return found
}

/** What a write would do to stock. Args have been validated against the tool's schema by the caller. */
export function previewWrite(
  store: InventoryReads,
  tool: WriteToolName,
  args: ToolArgs<WriteToolName>,
): Promise<WriteImpact> {
  return writeTool(tool).preview(store, args)
}

/** The entities a write touches, for the scope check. */
export function writeTargets(tool: WriteToolName, args: ToolArgs<WriteToolName>): WriteTargets {
  return writeTool(tool).targets(args)
}

/**
 * Applies one write exactly once: a key already recorded returns the recorded result with
 * `applied: false`; otherwise the tool's effect and its record are written as one unit.
 */
export async function applyWrite(
  store: InventoryBackend,
  tool: WriteToolName,
  args: ToolArgs<WriteToolName>,
  context: WriteContext,
): Promise<WriteResult> {
  const previous = await store.findAction(context.idempotencyKey)
  if (previous) {
    return {
      ...previous.result,
      applied: false,
      message:
        `already applied under idempotency key ${context.idempotencyKey.slice(0, 12)}: ` + previous.result.message,
    }
  }
  return store.unitOfWork(
    async () => {
      const result = await writeTool(tool).apply(store, args, context)
      if (result.applied) {
        await store.recordAction({...context, tool, args: canonicalJson(args), result, at: Date.now()})
      }
      return result
    },
    () => true,
  )
}
