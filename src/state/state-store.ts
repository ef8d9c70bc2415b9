import {z} from 'zod'

import type {Plan} from '../agent/plan.js'

/*
 * invagent's own state, apart from the inventory (which may belong to another system): plans,
 * approvals (plans parked for a person), escalations (a durable queue), runs and their outcomes
 * (docs/architecture.md, "State store"). SQLite `.invagent/state.db` by default; the interface is
 * what a PostgreSQL implementation (schema `invagent`) provides too: every method is async and
 * every decision is a compare-and-set on the current status, so two processes deciding the same
 * approval cannot both win.
 */

export const APPROVAL_STATUSES = ['pending', 'approving', 'applied', 'stale', 'rejected', 'expired', 'failed'] as const
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number]

export const Approval = z.object({
  id: z.string(),
  planId: z.string(),
  runId: z.string(),
  findingId: z.string(),
  inventory: z.string(),
  status: z.enum(APPROVAL_STATUSES),
  /** The largest stock movement of one write in the plan. */
  maxImpact: z.number().int(),
  writes: z.number().int(),
  summary: z.string(),
  rootCause: z.string(),
  requestedAt: z.string(),
  expiresAt: z.string(),
  decidedAt: z.string().nullable(),
  decidedBy: z.string().nullable(),
  reason: z.string().nullable(),
  /** For a stale approval: what changed since the plan was made. */
  changes: z.array(z.string()),
  planDigest: z.string(),
})
export type Approval = z.infer<typeof Approval>

export const ESCALATION_STATUSES = ['open', 'closed'] as const

export const Escalation = z.object({
  id: z.string(),
  runId: z.string(),
  findingId: z.string(),
  inventory: z.string(),
  status: z.enum(ESCALATION_STATUSES),
  rule: z.string(),
  entity: z.string(),
  evidence: z.record(z.string(), z.unknown()),
  evidenceDigest: z.string(),
  /** What the engine tried: its tool calls, in order, with what each returned. */
  tried: z.array(z.object({tool: z.string(), args: z.record(z.string(), z.unknown()), outcome: z.string()})),
  rootCauseGuess: z.string(),
  summary: z.string(),
  nextStep: z.string(),
  /** How many runs escalated the same finding with the same evidence. */
  seen: z.number().int(),
  createdAt: z.string(),
  lastSeenAt: z.string(),
  closedAt: z.string().nullable(),
  closedBy: z.string().nullable(),
  note: z.string().nullable(),
  planId: z.string().nullable(),
})
export type Escalation = z.infer<typeof Escalation>

export type EscalationInput = Omit<
  Escalation,
  'id' | 'status' | 'seen' | 'createdAt' | 'lastSeenAt' | 'closedAt' | 'closedBy' | 'note'
>

export interface RunRecord {
  id: string
  inventory: string
  engine: string
  dryRun: boolean
  startedAt: string
  logFile: string
}

export interface OutcomeRecord {
  runId: string
  findingId: string
  outcome: string
  rootCause: string
  summary: string
  planId: string | null
  approvalId: string | null
  escalationId: string | null
}

export interface ApprovalDecision {
  status: ApprovalStatus
  by?: string
  reason?: string | null
  changes?: string[]
}

export interface StateStore {
  readonly location: string

  recordRunStarted(run: RunRecord): Promise<void>
  recordRunFinished(runId: string, summary: unknown, exitCode: number): Promise<void>
  recordOutcome(outcome: OutcomeRecord): Promise<void>

  savePlan(plan: Plan): Promise<void>
  getPlan(planId: string): Promise<Plan | undefined>

  /** Parks a plan; when one for the same finding and fingerprint is still pending, returns that one. */
  park(plan: Plan, expiresAt: Date): Promise<Approval>
  getApproval(id: string): Promise<Approval | undefined>
  listApprovals(filter?: {status?: ApprovalStatus}): Promise<Approval[]>
  /**
   * Moves an approval from `expected` to a new status; returns the updated approval, or undefined
   * when its status was no longer `expected` (someone else decided first).
   */
  decideApproval(id: string, expected: ApprovalStatus, decision: ApprovalDecision): Promise<Approval | undefined>

  /** Queues an escalation; an open one for the same finding and evidence is counted again instead. */
  escalate(input: EscalationInput): Promise<Escalation>
  getEscalation(id: string): Promise<Escalation | undefined>
  listEscalations(filter?: {status?: Escalation['status']}): Promise<Escalation[]>
  closeEscalation(id: string, note: string, by: string): Promise<Escalation | undefined>

  close(): void | Promise<void>
}
