import type {InventoryReads} from '../inventory/backend.js'
import type {ReadToolName, ToolArgs} from './tools.js'

/**
 * The meaning of every read tool (docs/architecture.md, "Write tools", has the writes'): a tool's
 * result, in its schema's shape, from a backend's reads. The audit loop answers the engine's reads
 * with it, and the reference server serves it at GET /v1/tools/<name>. Arguments have been
 * validated against the tool's schema; a missing entity is a ToolFailure.
 */
export async function callReadTool(
  backend: InventoryReads,
  name: ReadToolName,
  args: Record<string, unknown>,
): Promise<unknown> {
  switch (name) {
    case 'get_part':
      return backend.getPart(args.part_id as string)
    case 'find_part_by_sku':
      return backend.findPartsBySku(args.sku as string)
    case 'list_transactions': {
      const a = args as ToolArgs<'list_transactions'>
      return backend.listTransactions({
        partId: a.part_id,
        externalRef: a.external_ref,
        status: a.status,
        kind: a.kind,
        limit: a.limit,
      })
    }
    case 'get_transaction':
      return backend.getTransaction(args.txn_id as string)
    case 'get_ledger_balance':
      return backend.getLedgerBalance(args.part_id as string)
    case 'get_integration_events':
      return {events: await backend.getIntegrationEvents(args.txn_id as string)}
    case 'list_reservations': {
      const a = args as ToolArgs<'list_reservations'>
      return {reservations: await backend.listReservations(a.part_id, a.status)}
    }
  }
}
