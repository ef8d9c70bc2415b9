import {InvagentError} from '../../errors.js'
import {getTool, type WriteResult, type WriteToolName} from '../../tools/tools.js'
import {ToolFailure, type WriteContext} from '../backend.js'
import {toolPath} from './contract.js'
import {HttpInventoryError, type InventoryHttpClient, type ResponseSchema} from './http-client.js'

/*
 * Sending writes to an inventory behind the REST contract, in order, each under its idempotency
 * key: the apply step of a plan. Nothing can be rolled back there, so a failure midway says
 * exactly what was applied, what failed (and whether it may have been applied) and what was not sent.
 */

export interface PlannedWrite {
  tool: WriteToolName
  args: Record<string, unknown>
  idempotencyKey: string
}

export interface AppliedWrite extends PlannedWrite {
  result: WriteResult
}

function describeWrite(write: PlannedWrite): string {
  const {reason: _reason, ...target} = write.args
  return `${write.tool} ${JSON.stringify(target)} (key ${write.idempotencyKey.slice(0, 12)}…)`
}

/** Some of a unit's writes reached the inventory and the rest did not: nothing was rolled back. */
export class PartiallyAppliedError extends InvagentError {
  readonly applied: AppliedWrite[]
  readonly failed: (PlannedWrite & {error: string; maybeApplied: boolean}) | undefined
  readonly notSent: PlannedWrite[]

  constructor(
    location: string,
    details: {
      applied: AppliedWrite[]
      failed?: PlannedWrite & {error: string; maybeApplied: boolean}
      notSent: PlannedWrite[]
      problem?: string
    },
  ) {
    const total = details.applied.length + (details.failed ? 1 : 0) + details.notSent.length
    const {failed} = details
    const appliedCount = `${details.applied.length} of ${total} writes were applied to ${location}`
    const lines = [
      failed
        ? `${appliedCount} before ${describeWrite(failed)} failed: ${failed.error}`
        : `all ${total} writes were applied to ${location}, but ${details.problem}`,
    ]
    if (failed?.maybeApplied) {
      lines.push(`That write may have been applied: no answer came back (sending it again with the same key is safe).`)
    }
    const appliedList = details.applied.map((write, index) => `${index + 1}. ${describeWrite(write)}`)
    lines.push(`Applied: ${appliedList.length === 0 ? 'none' : appliedList.join('; ')}.`)
    if (details.notSent.length > 0) lines.push(`Not sent: ${details.notSent.map(describeWrite).join('; ')}.`)
    lines.push('The inventory cannot roll back: a person has to finish or undo these writes.')
    super(lines.join(' '), {code: 'PARTIALLY_APPLIED', exitCode: 1})
    this.applied = details.applied
    this.failed = details.failed
    this.notSent = details.notSent
  }
}

/** One write, under its key: safe to send again (the server answers a repeat from its record). */
export async function sendWrite(
  client: InventoryHttpClient,
  write: PlannedWrite,
  context: Pick<WriteContext, 'runId' | 'findingId'>,
): Promise<WriteResult> {
  const tool = getTool(write.tool)!
  return client.post(toolPath(write.tool), write.args, tool.result as ResponseSchema<WriteResult>, {
    idempotencyKey: write.idempotencyKey,
    runId: context.runId,
    findingId: context.findingId,
  })
}

/** Sends the writes one after another; stops at the first failure with a PartiallyAppliedError. */
export async function sendWritesInOrder(
  client: InventoryHttpClient,
  writes: readonly PlannedWrite[],
  context: Pick<WriteContext, 'runId' | 'findingId'>,
): Promise<AppliedWrite[]> {
  const applied: AppliedWrite[] = []
  for (const [index, write] of writes.entries()) {
    try {
      applied.push({...write, result: await sendWrite(client, write, context)})
    } catch (error) {
      const maybeApplied = error instanceof HttpInventoryError ? error.maybeApplied : !(error instanceof ToolFailure)
      throw new PartiallyAppliedError(client.baseUrl, {
        applied,
        failed: {...write, error: (error as Error).message, maybeApplied},
        notSent: writes.slice(index + 1),
      })
    }
  }
  return applied
}
