import type {Finding} from '../detect/finding.js'
import {canonicalUnit} from '../inventory/units.js'
import {WRITE_TOOL_NAMES, type ToolResult} from '../tools/tools.js'
import type {Engine, EngineProposal, EngineSession, Observation, ProposedStep} from './engine.js'
import {classifyMessage, unitEvidence, type MessageClass} from './message-classifier.js'

/*
 * The rules playbook: a deterministic engine that troubleshoots each rule through the same typed
 * tools a model uses, one step at a time, and only acts on evidence it has read. It is the
 * baseline the model must match, and the generator of gold trajectories for the dataset.
 */

type Play = AsyncGenerator<ProposedStep, unknown, Observation>

/** A ledger balance above this, or a single posting this large, is not plausible for a store. */
export const IMPLAUSIBLE_POSTING = 100_000

const WRITE_TOOLS: ReadonlySet<string> = new Set(WRITE_TOOL_NAMES)

class RulesSession implements EngineSession {
  private readonly play: Play
  private started = false
  private lastTool: string | undefined

  constructor(finding: Finding) {
    this.play = playbook(finding)
  }

  async next(observation: Observation | undefined): Promise<EngineProposal> {
    // A refused or failed write ends the play: the playbook never works around the policy gate.
    if (observation && !observation.ok && this.lastTool !== undefined && WRITE_TOOLS.has(this.lastTool)) {
      return {step: escalate('unknown', 'write refused', `${this.lastTool} was refused: ${observation.error}`)}
    }
    const result = this.started
      ? await this.play.next(observation!)
      : await this.play.next(undefined as unknown as Observation)
    this.started = true
    if (!result.done) this.lastTool = result.value.tool
    if (result.done)
      return {
        step: {
          thought: 'The playbook has nothing more to try.',
          tool: 'escalate',
          args: {root_cause: 'unknown', reason: 'playbook exhausted', summary: 'no playbook step left'},
        },
      }
    return {step: result.value}
  }
}

export class RulesEngine implements Engine {
  readonly name = 'rules'

  start(finding: Finding): EngineSession {
    return new RulesSession(finding)
  }
}

function step(thought: string, tool: string, args: Record<string, unknown>): ProposedStep {
  return {thought, tool, args}
}

/** Reads a tool's result, or stops the play with an escalation when the tool failed. */
function expect<T>(observation: Observation): T | undefined {
  return observation.ok ? (observation.result as T) : undefined
}

function escalate(rootCause: string, reason: string, summary: string): ProposedStep {
  return step(summary, 'escalate', {root_cause: rootCause, reason, summary})
}

function resolve(rootCause: string, summary: string): ProposedStep {
  return step(summary, 'resolve', {root_cause: rootCause, summary})
}

async function* playbook(finding: Finding): Play {
  switch (finding.rule) {
    case 'negative_on_hand':
      return yield* negativeOnHand(finding.entity)
    case 'ledger_mismatch':
      return yield* ledgerMismatch(finding.entity)
    case 'stuck_pending':
    case 'sync_error':
      return yield* unposted(finding)
    case 'duplicate_posting':
      return yield* duplicatePosting(finding.entity)
    case 'orphan_transaction':
      return yield* orphan(finding.entity)
    case 'reservation_drift':
      return yield* reservationDrift(finding.entity)
    case 'uom_mismatch':
      return yield* uomMismatch(finding.entity)
  }
}

type Events = ToolResult<'get_integration_events'>
type Transactions = ToolResult<'list_transactions'>
type Balance = ToolResult<'get_ledger_balance'>
type Part = ToolResult<'get_part'>
type Transaction = ToolResult<'get_transaction'>

function classes(events: Events | undefined): MessageClass[] {
  return (events?.events ?? []).map((event) => classifyMessage(event.message, event.level))
}

async function* negativeOnHand(partId: string): Play {
  const balance = expect<Balance>(
    yield step(`on_hand of ${partId} is negative. First compare the cache with the ledger.`, 'get_ledger_balance', {
      part_id: partId,
    }),
  )
  if (!balance) return yield escalate('unknown', 'part unreadable', `${partId} could not be read.`)
  if (balance.on_hand !== balance.ledger_balance && balance.ledger_balance >= 0) {
    yield step(
      `The cache (${balance.on_hand}) disagrees with a non-negative ledger (${balance.ledger_balance}); recompute it.`,
      'recompute_on_hand',
      {part_id: partId, reason: 'on_hand cache drifted from the ledger'},
    )
    return yield resolve('cache_drift', `Recomputed on_hand of ${partId} from the ledger (${balance.ledger_balance}).`)
  }
  const pending = expect<Transactions>(
    yield step('Is a receipt that would cover it still pending?', 'list_transactions', {
      part_id: partId,
      status: 'pending',
      kind: 'receipt',
    }),
  )
  for (const receipt of (pending?.transactions ?? []).filter((txn) => txn.qty > 0 && txn.stock_delta !== null)) {
    const events = expect<Events>(
      yield step(`Receipt ${receipt.id} is pending; read why it did not post.`, 'get_integration_events', {
        txn_id: receipt.id,
      }),
    )
    const kinds = classes(events)
    if (kinds.length > 0 && kinds.every((kind) => kind === 'transient' || kind === 'info')) {
      const posted = yield step(
        `Only transient failures for ${receipt.id}: reprocess it once.`,
        'reprocess_transaction',
        {txn_id: receipt.id, reason: 'receipt stuck after a transient sync failure; on_hand is negative without it'},
      )
      if (posted.ok && balance.on_hand + receipt.stock_delta! >= 0)
        return yield resolve(
          'receipt_stuck_pending',
          `Reprocessed pending receipt ${receipt.id}; on_hand of ${partId} is no longer negative.`,
        )
    }
  }

  // Only a posted issue can explain the shortage now, and the detector runs continuously, so the
  // posting that drove on_hand negative is among the latest: five rows keep the step short, and
  // when none of them explains it the playbook escalates rather than guessing.
  const posted = expect<Transactions>(
    yield step('Look for a doubled or mis-unitized recent issue.', 'list_transactions', {
      part_id: partId,
      status: 'posted',
      kind: 'issue',
      limit: 5,
    }),
  )
  const issues = (posted?.transactions ?? []).filter((txn) => txn.qty < 0)
  const seen = new Map<string, Transaction>()
  for (const issue of [...issues].sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id))) {
    const key = `${issue.source}|${issue.external_ref}`
    const first = seen.get(key)
    if (first && first.qty === issue.qty && first.uom === issue.uom) {
      yield step(
        `${issue.id} repeats ${first.id} (${issue.source} ${issue.external_ref}); void the later one.`,
        'void_transaction',
        {txn_id: issue.id, reason: `duplicate posting of ${issue.external_ref}`},
      )
      return yield resolve('duplicate_issue_posting', `Voided duplicate issue ${issue.id} of ${issue.external_ref}.`)
    }
    seen.set(key, issue)
  }
  // The balance is in the part's unit: an issue in another unit is the suspect.
  for (const issue of issues.filter((txn) => txn.uom !== balance.uom)) {
    const events = expect<Events>(
      yield step(
        `${issue.id} was issued in ${issue.uom}; check what the source document counted.`,
        'get_integration_events',
        {txn_id: issue.id},
      ),
    )
    const evidence = (events?.events ?? [])
      .map((event) => unitEvidence(event.message))
      .find((found) => found !== undefined)
    if (evidence && evidence.uom === balance.uom && evidence.qty === Math.abs(issue.qty)) {
      yield step(
        `The source counted ${evidence.qty} ${evidence.uom}, not ${Math.abs(issue.qty)} ${issue.uom}: ` +
          `correct the unit.`,
        'correct_transaction_uom',
        {txn_id: issue.id, uom: balance.uom, reason: `source document counted ${evidence.qty} ${evidence.uom}`},
      )
      return yield resolve('issue_uom_error', `Corrected the unit of ${issue.id} to ${balance.uom}.`)
    }
  }
  return yield escalate(
    'unexplained_shortage',
    'needs a physical count',
    `Nothing in the ledger of ${partId} explains on_hand ${balance.on_hand}; a physical count is needed.`,
  )
}

async function* ledgerMismatch(partId: string): Play {
  const balance = expect<Balance>(
    yield step(`on_hand of ${partId} differs from its ledger; read both.`, 'get_ledger_balance', {part_id: partId}),
  )
  if (!balance) return yield escalate('unknown', 'part unreadable', `${partId} could not be read.`)
  if (balance.ledger_balance < 0 || balance.largest_posting >= IMPLAUSIBLE_POSTING) {
    return yield escalate(
      'implausible_ledger',
      'the ledger is implausible',
      `The ledger of ${partId} is implausible (balance ${balance.ledger_balance}, largest ` +
        `posting ${balance.largest_posting}); recomputing would spread the error.`,
    )
  }
  yield step(
    `The ledger (${balance.ledger_balance}) is plausible; the cache (${balance.on_hand}) drifted. Recompute it.`,
    'recompute_on_hand',
    {part_id: partId, reason: 'on_hand cache drifted from a plausible ledger'},
  )
  return yield resolve(
    'cache_drift',
    `Recomputed on_hand of ${partId}: ${balance.on_hand} → ${balance.ledger_balance}.`,
  )
}

/**
 * A pending or failed transaction. The data is read first and decides where it proves the cause:
 * a transaction that names no part (or a part that is gone) has an unknown SKU, whatever its
 * message says; one whose unit its part cannot convert, but which is a spelling of a unit the
 * part knows, has a bad unit. Only for a transaction the data finds nothing wrong with do the
 * messages decide, since only they tell a passing failure from a permanent one.
 */
async function* unposted(finding: Finding): Play {
  const txnId = finding.entity
  const txn = expect<Transaction>(
    yield step(
      `${txnId} is ${finding.rule === 'sync_error' ? 'in error' : 'stuck pending'}; read it.`,
      'get_transaction',
      {txn_id: txnId},
    ),
  )
  if (!txn) return yield escalate('unknown', 'transaction unreadable', `${txnId} could not be read.`)
  const events = expect<Events>(
    yield step('Read the integration events to learn why it did not post.', 'get_integration_events', {txn_id: txnId}),
  )
  const kinds = classes(events).filter((kind) => kind !== 'info')
  const last = kinds.at(-1)

  let part: Part | undefined
  if (txn.part_id !== null && txn.stock_delta === null) {
    // The thoughts of unchanged steps keep their words: the shipped datasets are generated from them.
    part = expect<Part>(
      yield step(`Unit "${txn.uom}" was rejected; read the part's units.`, 'get_part', {part_id: txn.part_id}),
    )
  }
  if (txn.part_id === null || (txn.stock_delta === null && part === undefined)) {
    const found = expect<ToolResult<'find_part_by_sku'>>(
      yield step(`SKU "${txn.sku}" was not found; look for the part it means.`, 'find_part_by_sku', {sku: txn.sku}),
    )
    const parts = [...new Set((found?.matches ?? []).map((match) => match.part_id))]
    if (parts.length !== 1)
      return yield escalate(
        'unrecognized_error',
        parts.length === 0 ? 'SKU matches no part' : 'SKU is ambiguous',
        `SKU "${txn.sku}" of ${txnId} matches ${parts.length} parts.`,
      )
    yield step(`"${txn.sku}" resolves to ${parts[0]} only: remap.`, 'remap_transaction_part', {
      txn_id: txnId,
      part_id: parts[0],
      reason: `SKU "${txn.sku}" is an alias of ${parts[0]}`,
    })
    yield step('Now reprocess it.', 'reprocess_transaction', {txn_id: txnId, reason: 'remapped to the right part'})
    return yield resolve('unknown_sku', `Remapped ${txnId} to ${parts[0]} and posted it.`)
  }
  if (part !== undefined) {
    const unit = canonicalUnit(txn.uom)
    if (
      unit &&
      unit !== txn.uom &&
      (unit === part.uom || part.conversions.some((conversion) => conversion.uom === unit))
    ) {
      yield step(
        `"${txn.uom}" is a spelling of ${unit}, which ${part.id} knows: correct it.`,
        'correct_transaction_uom',
        {txn_id: txnId, uom: unit, reason: `"${txn.uom}" is a spelling of ${unit}`},
      )
      yield step('Now reprocess it.', 'reprocess_transaction', {txn_id: txnId, reason: 'unit corrected'})
      return yield resolve('bad_uom', `Corrected the unit of ${txnId} to ${unit} and posted it.`)
    }
    return yield escalate(
      'unrecognized_error',
      'no safe fix',
      `${txnId}: ${part.id} has no conversion for "${txn.uom}" and it is no spelling of a unit it knows.`,
    )
  }

  // The transaction is well-formed: only the messages can say whether the failure will pass.
  if (last === undefined) {
    yield step(
      'No error was recorded and the transaction is well-formed: reprocess it once.',
      'reprocess_transaction',
      {txn_id: txnId, reason: 'stuck without a recorded error'},
    )
    return yield resolve('transient_sync_error', `Reprocessed ${txnId}.`)
  }
  if (last === 'unknown_sku') {
    // The SKU was unknown when it failed; if it now resolves to exactly the part the transaction
    // names, the cause was fixed (a remap that landed before the post), and posting is what is left.
    const found = expect<ToolResult<'find_part_by_sku'>>(
      yield step(`SKU "${txn.sku}" was reported unknown; check what it resolves to now.`, 'find_part_by_sku', {
        sku: txn.sku,
      }),
    )
    const parts = [...new Set((found?.matches ?? []).map((match) => match.part_id))]
    if (parts.length === 1 && parts[0] === txn.part_id) {
      yield step(`"${txn.sku}" resolves to ${txn.part_id}, the part it names: reprocess it.`, 'reprocess_transaction', {
        txn_id: txnId,
        reason: `SKU "${txn.sku}" now resolves to ${txn.part_id}`,
      })
      return yield resolve('unknown_sku', `${txnId} already pointed at ${txn.part_id}; posted it.`)
    }
  }
  if (last === 'transient' && !kinds.includes('unrecognized')) {
    yield step('Only transient failures were recorded: reprocess once (idempotent).', 'reprocess_transaction', {
      txn_id: txnId,
      reason: 'transient integration failure',
    })
    return yield resolve('transient_sync_error', `Reprocessed ${txnId} after a transient failure.`)
  }
  return yield escalate(
    'unrecognized_error',
    'error not understood',
    `${txnId}: the integration error is not one the playbook can fix safely.`,
  )
}

async function* duplicatePosting(txnId: string): Play {
  const txn = expect<Transaction>(
    yield step(`${txnId} repeats an earlier posting; read it.`, 'get_transaction', {txn_id: txnId}),
  )
  if (!txn) return yield escalate('unknown', 'transaction unreadable', `${txnId} could not be read.`)
  const same = expect<Transactions>(
    yield step(`List every transaction with reference ${txn.external_ref}.`, 'list_transactions', {
      external_ref: txn.external_ref,
      status: 'posted',
    }),
  )
  const earlier = (same?.transactions ?? []).filter(
    (other) =>
      other.id !== txn.id &&
      other.source === txn.source &&
      (other.created_at < txn.created_at || (other.created_at === txn.created_at && other.id < txn.id)),
  )
  if (
    earlier.length === 0 ||
    !earlier.some((other) => other.qty === txn.qty && other.uom === txn.uom && other.part_id === txn.part_id)
  ) {
    return yield escalate(
      'unknown',
      'postings differ',
      `${txnId} shares ${txn.external_ref} with postings that are not identical; a human must decide.`,
    )
  }
  const events = expect<Events>(
    yield step('Read the events of the later posting: was it shipped or invoiced?', 'get_integration_events', {
      txn_id: txnId,
    }),
  )
  const kinds = classes(events)
  if (kinds.includes('invoiced'))
    return yield escalate(
      'already_invoiced',
      'already shipped or invoiced',
      `${txnId} was already shipped or invoiced; voiding it needs a credit note first.`,
    )
  const rootCause = kinds.includes('job_rerun') ? 'job_ran_twice' : 'webhook_redelivery'
  yield step(
    `The later posting ${txnId} is ` +
      `a ${rootCause === 'job_ran_twice' ? 're-run import' : 'redelivered webhook'}: void it.`,
    'void_transaction',
    {txn_id: txnId, reason: `duplicate posting of ${txn.external_ref}`},
  )
  return yield resolve(rootCause, `Voided duplicate ${txnId} of ${txn.external_ref}.`)
}

async function* orphan(txnId: string): Play {
  const txn = expect<Transaction>(
    yield step(`${txnId} points at a part that does not exist; read it.`, 'get_transaction', {txn_id: txnId}),
  )
  if (!txn) return yield escalate('unknown', 'transaction unreadable', `${txnId} could not be read.`)
  const found = expect<ToolResult<'find_part_by_sku'>>(
    yield step(`Which part does SKU "${txn.sku}" mean?`, 'find_part_by_sku', {sku: txn.sku}),
  )
  const parts = [...new Set((found?.matches ?? []).map((match) => match.part_id))]
  if (parts.length === 0)
    return yield escalate(
      'alias_missing',
      'no part or alias matches',
      `SKU "${txn.sku}" of ${txnId} matches no part or alias.`,
    )
  if (parts.length > 1)
    return yield escalate(
      'ambiguous_alias',
      'SKU matches several parts',
      `SKU "${txn.sku}" of ${txnId} matches ${parts.join(', ')}.`,
    )
  yield step(`"${txn.sku}" resolves unambiguously to ${parts[0]}: remap.`, 'remap_transaction_part', {
    txn_id: txnId,
    part_id: parts[0],
    reason: `SKU "${txn.sku}" was renamed to ${parts[0]}`,
  })
  return yield resolve('renamed_sku', `Remapped ${txnId} to ${parts[0]}.`)
}

async function* reservationDrift(partId: string): Play {
  let balance = expect<Balance>(
    yield step(
      `Reservations of ${partId} look wrong; compare reserved with active reservations.`,
      'get_ledger_balance',
      {part_id: partId},
    ),
  )
  if (!balance) return yield escalate('unknown', 'part unreadable', `${partId} could not be read.`)
  let rootCause = 'reserved_cache_drift'
  if (balance.reserved !== balance.active_reserved) {
    yield step(
      `reserved (${balance.reserved}) ≠ active reservations (${balance.active_reserved}): recompute.`,
      'recompute_reserved',
      {part_id: partId, reason: 'reserved cache drifted from active reservations'},
    )
    balance = {...balance, reserved: balance.active_reserved}
  }
  if (balance.reserved > balance.on_hand) {
    const list = expect<ToolResult<'list_reservations'>>(
      yield step(
        `reserved (${balance.reserved}) exceeds on_hand (${balance.on_hand}); look for stale reservations.`,
        'list_reservations',
        {part_id: partId, status: 'active'},
      ),
    )
    const stale = (list?.reservations ?? []).filter((reservation) => reservation.shipped_qty >= reservation.qty)
    const released = stale.reduce((sum, reservation) => sum + reservation.qty, 0)
    if (stale.length === 0 || balance.reserved - released > balance.on_hand) {
      return yield escalate(
        'picked_stock',
        'would release picked stock',
        `reserved exceeds on_hand for ${partId} and no stale reservation explains it.`,
      )
    }
    for (const reservation of stale) {
      yield step(
        `${reservation.order_ref} already shipped ${reservation.shipped_qty}: release ${reservation.id}.`,
        'release_reservation',
        {reservation_id: reservation.id, reason: `order line ${reservation.order_ref} already shipped`},
      )
    }
    rootCause = 'stale_reservation'
  }
  return yield resolve(rootCause, `Reservations of ${partId} are consistent again.`)
}

async function* uomMismatch(txnId: string): Play {
  const txn = expect<Transaction>(
    yield step(`${txnId} is in a unit its part cannot convert; read it.`, 'get_transaction', {txn_id: txnId}),
  )
  if (!txn || txn.part_id === null)
    return yield escalate('unknown', 'transaction unreadable', `${txnId} could not be read.`)
  const part = expect<Part>(yield step("Read the part's unit and conversions.", 'get_part', {part_id: txn.part_id}))
  if (!part) return yield escalate('unknown', 'part unreadable', `${txn.part_id} could not be read.`)
  const unit = canonicalUnit(txn.uom)
  if (
    unit &&
    unit !== txn.uom &&
    (unit === part.uom || part.conversions.some((conversion) => conversion.uom === unit))
  ) {
    yield step(`"${txn.uom}" is a spelling of ${unit}: correct it.`, 'correct_transaction_uom', {
      txn_id: txnId,
      uom: unit,
      reason: `"${txn.uom}" is a spelling of ${unit}`,
    })
    return yield resolve('uom_label_variant', `Corrected the unit of ${txnId} to ${unit}.`)
  }
  const events = expect<Events>(
    yield step(`No conversion for ${txn.uom}; check what the source document counted.`, 'get_integration_events', {
      txn_id: txnId,
    }),
  )
  const evidence = (events?.events ?? [])
    .map((event) => unitEvidence(event.message))
    .find((found) => found !== undefined)
  if (evidence && evidence.uom === part.uom && evidence.qty === Math.abs(txn.qty)) {
    yield step(
      `The source counted ${evidence.qty} ${evidence.uom}: the label ${txn.uom} was wrong.`,
      'correct_transaction_uom',
      {txn_id: txnId, uom: part.uom, reason: `source document counted ${evidence.qty} ${evidence.uom}`},
    )
    return yield resolve('case_vs_each', `Corrected the unit of ${txnId} to ${part.uom}.`)
  }
  return yield escalate(
    'unknown_factor',
    'conversion factor unknown',
    `No conversion from ${txn.uom} to ${part.uom} for ${part.id}, and no evidence of the factor.`,
  )
}
