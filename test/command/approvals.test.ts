import {join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {beforeEach, describe, expect, it} from 'vitest'

import {
  ApprovalsApproveOutput,
  ApprovalsListOutput,
  ApprovalsRejectOutput,
  ApprovalsShowOutput,
  AuditOutput,
  EscalationsCloseOutput,
  EscalationsListOutput,
  EscalationsShowOutput,
  LogVerifyOutput,
} from '../../src/cli/output-schemas.js'
import {runCli, sha256OfFile, temporaryDirectory} from '../helpers/cli.js'

/** Reads rows straight from a database file, outside invagent. */
function query<T>(db: string, sql: string, ...params: string[]): T[] {
  const raw = new DatabaseSync(db, {readOnly: true})
  try {
    return raw.prepare(sql).all(...params) as T[]
  } finally {
    raw.close()
  }
}

function partCaches(db: string, partId: string): {on_hand: number; reserved: number} {
  return query<{on_hand: number; reserved: number}>(db, 'SELECT on_hand, reserved FROM parts WHERE id = ?', partId)[0]
}

function actionsOf(db: string, findingId: string): number {
  return query<{n: number}>(db, 'SELECT count(*) AS n FROM agent_actions WHERE finding_id = ?', findingId)[0].n
}

/** An inventory whose cache_drift fixes are parked: every write moves stock above --approve-above 0. */
async function parkedInventory(cwd: string, extra: string[] = []) {
  const db = join(cwd, 'inv.db')
  expect((await runCli(['inventory', 'init', '--db', db, '--seed', '5'], cwd)).exitCode).toBe(0)
  const audit = await runCli(
    ['audit', '--db', db, '--approve-above', '0', '--rule', 'ledger_mismatch', '--json', ...extra],
    cwd,
  )
  expect(audit.exitCode).toBe(0)
  const report = AuditOutput.parse(audit.json)
  const parked = report.outcomes.find((outcome) => outcome.outcome === 'parked')!
  expect(parked.approvalId).toMatch(/^A-/)
  return {db, report, parked, approvalId: parked.approvalId!}
}

describe('invagent approvals', () => {
  let cwd: string
  beforeEach(() => {
    cwd = temporaryDirectory()
  })

  it('lists and shows a parked plan, applies it on approve, and applies it once when approved twice', async () => {
    const {db, parked, approvalId} = await parkedInventory(cwd)
    const list = ApprovalsListOutput.parse((await runCli(['approvals', 'list', '--db', db, '--json'], cwd)).json)
    expect(list.approvals.map((approval) => [approval.id, approval.status])).toEqual([[approvalId, 'pending']])
    const shown = ApprovalsShowOutput.parse(
      (await runCli(['approvals', 'show', approvalId, '--db', db, '--json'], cwd)).json,
    )
    expect(shown.plan.findingId).toBe(parked.findingId)
    expect(shown.plan.writes.map((write) => write.tool)).toEqual(['recompute_on_hand'])
    expect(shown.plan.engine).toMatchObject({name: 'rules', model: null})
    expect(shown.plan.fingerprint).toMatch(/^[0-9a-f]{64}$/)

    const partId = parked.entity
    const before = partCaches(db, partId)
    const first = await runCli(
      ['approvals', 'approve', approvalId, '--db', db, '--by', 'alice', '--reason', 'looked right', '--json'],
      cwd,
    )
    expect(first.exitCode).toBe(0)
    const applied = ApprovalsApproveOutput.parse(first.json)
    expect(applied).toMatchObject({status: 'applied', appliedNow: true})
    expect(applied.approval).toMatchObject({status: 'applied', decidedBy: 'alice', reason: 'looked right'})
    const after = partCaches(db, partId)
    expect(after.on_hand).toBe(before.on_hand + shown.plan.writes[0].impact.onHandDelta)
    expect(actionsOf(db, parked.findingId)).toBe(1)

    const bytes = sha256OfFile(db)
    const second = ApprovalsApproveOutput.parse(
      (await runCli(['approvals', 'approve', approvalId, '--db', db, '--json'], cwd)).json,
    )
    expect(second).toMatchObject({status: 'applied', appliedNow: false})
    expect(sha256OfFile(db)).toBe(bytes)
    expect(partCaches(db, partId)).toEqual(after)
    expect(actionsOf(db, parked.findingId)).toBe(1)

    // The decision, who made it and the plan's digest are in a log that verifies.
    const verify = LogVerifyOutput.parse((await runCli(['log', 'verify', '--db', db, '--json'], cwd)).json)
    expect(verify.ok).toBe(true)
    const {readFileSync} = await import('node:fs')
    const lines = verify.files.flatMap((file) =>
      readFileSync(file.file, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line)),
    )
    const decided = lines.find((line) => line.event === 'approval-decided')
    expect(decided.data).toMatchObject({approvalId, decision: 'approved', by: 'alice', reason: 'looked right'})
    expect(decided.data.planDigest).toMatch(/^[0-9a-f]{64}$/)
  })

  it('says stale, with what changed, and applies nothing when a row in the scope changed after the plan', async () => {
    const {db, parked, approvalId} = await parkedInventory(cwd)
    const raw = new DatabaseSync(db)
    raw.prepare('UPDATE parts SET on_hand = on_hand + 1 WHERE id = ?').run(parked.entity)
    raw.close()
    const bytes = sha256OfFile(db)
    const run = await runCli(['approvals', 'approve', approvalId, '--db', db, '--json'], cwd)
    expect(run.exitCode).toBe(1)
    const stale = ApprovalsApproveOutput.parse(run.json)
    expect(stale).toMatchObject({status: 'stale', appliedNow: false})
    expect(stale.changes.some((change) => change.startsWith(`parts ${parked.entity}: on_hand`))).toBe(true)
    expect(sha256OfFile(db)).toBe(bytes)
    expect(actionsOf(db, parked.findingId)).toBe(0)
    const list = ApprovalsListOutput.parse(
      (await runCli(['approvals', 'list', '--db', db, '--status', 'stale', '--json'], cwd)).json,
    )
    expect(list.approvals.map((approval) => approval.id)).toEqual([approvalId])
  })

  it('keeps a rejection and its reason queryable, and will not approve it afterwards', async () => {
    const {db, approvalId} = await parkedInventory(cwd)
    const rejected = ApprovalsRejectOutput.parse(
      (
        await runCli(
          [
            'approvals',
            'reject',
            approvalId,
            '--db',
            db,
            '--by',
            'bob',
            '--reason',
            'shelf count says otherwise',
            '--json',
          ],
          cwd,
        )
      ).json,
    )
    expect(rejected.approval).toMatchObject({
      status: 'rejected',
      decidedBy: 'bob',
      reason: 'shelf count says otherwise',
    })
    const list = ApprovalsListOutput.parse(
      (await runCli(['approvals', 'list', '--db', db, '--status', 'rejected', '--json'], cwd)).json,
    )
    expect(list.approvals.map((approval) => approval.reason)).toEqual(['shelf count says otherwise'])
    const bytes = sha256OfFile(db)
    const approve = await runCli(['approvals', 'approve', approvalId, '--db', db, '--json'], cwd)
    expect(ApprovalsApproveOutput.parse(approve.json).status).toBe('rejected')
    expect(sha256OfFile(db)).toBe(bytes)
    expect((await runCli(['approvals', 'reject', approvalId, '--db', db, '--reason', 'again'], cwd)).exitCode).toBe(2)
  })

  it('expires a parked plan after its --ttl', async () => {
    const {db, approvalId} = await parkedInventory(cwd, ['--ttl', '1s'])
    await new Promise((resolve) => setTimeout(resolve, 1200))
    const bytes = sha256OfFile(db)
    const listed = ApprovalsListOutput.parse(
      (await runCli(['approvals', 'list', '--db', db, '--status', 'expired', '--json'], cwd)).json,
    )
    expect(listed.approvals.map((approval) => approval.id)).toEqual([approvalId])
    const run = await runCli(['approvals', 'approve', approvalId, '--db', db, '--json'], cwd)
    expect(ApprovalsApproveOutput.parse(run.json)).toMatchObject({status: 'expired', appliedNow: false})
    expect(sha256OfFile(db)).toBe(bytes)
  })

  it('parks every plan with writes under --approve all', async () => {
    const db = join(cwd, 'inv.db')
    await runCli(['inventory', 'init', '--db', db, '--seed', '5'], cwd)
    const report = AuditOutput.parse((await runCli(['audit', '--db', db, '--approve', 'all', '--json'], cwd)).json)
    expect(report.summary.resolved).toBe(0)
    expect(report.summary.parked).toBeGreaterThan(5)
    expect(
      report.outcomes.filter((outcome) => outcome.outcome === 'parked').every((outcome) => outcome.needsApproval),
    ).toBe(true)
  })

  it(
    'applies once after a crash (kill -9) inside the apply unit, and once after a crash between commit and ' +
      'the state update',
    async () => {
      const {db, parked, approvalId} = await parkedInventory(cwd)
      const bytes = sha256OfFile(db)
      const untouched = partCaches(db, parked.entity)
      const inside = await runCli(['approvals', 'approve', approvalId, '--db', db, '--json'], cwd, {
        INVAGENT_CRASH_AT: 'apply-write',
      })
      expect(inside.exitCode).not.toBe(0)
      expect(actionsOf(db, parked.findingId)).toBe(0)
      expect(partCaches(db, parked.entity)).toEqual(untouched)
      const stillPending = ApprovalsListOutput.parse(
        (await runCli(['approvals', 'list', '--db', db, '--json'], cwd)).json,
      )
      expect(stillPending.approvals[0].status).toBe('approving')

      const before = partCaches(db, parked.entity)
      const afterCommit = await runCli(['approvals', 'approve', approvalId, '--db', db, '--json'], cwd, {
        INVAGENT_CRASH_AT: 'apply-commit',
      })
      expect(afterCommit.exitCode).not.toBe(0)
      expect(sha256OfFile(db)).not.toBe(bytes)
      expect(actionsOf(db, parked.findingId)).toBe(1)
      const committed = partCaches(db, parked.entity)
      expect(committed.on_hand).not.toBe(before.on_hand)

      const rerun = ApprovalsApproveOutput.parse(
        (await runCli(['approvals', 'approve', approvalId, '--db', db, '--json'], cwd)).json,
      )
      expect(rerun).toMatchObject({status: 'applied', appliedNow: false})
      expect(partCaches(db, parked.entity)).toEqual(committed)
      expect(actionsOf(db, parked.findingId)).toBe(1)
    },
  )
})

describe('invagent escalations', () => {
  it(
    'queues escalations once per finding and evidence, shows ' + 'what was tried, and closes them with a note',
    async () => {
      const cwd = temporaryDirectory()
      const db = join(cwd, 'inv.db')
      await runCli(['inventory', 'init', '--db', db, '--seed', '11'], cwd)
      const report = AuditOutput.parse((await runCli(['audit', '--db', db, '--json'], cwd)).json)
      const escalated = report.outcomes.filter((outcome) => outcome.outcome === 'escalated')
      expect(escalated.length).toBeGreaterThan(0)
      expect(escalated.every((outcome) => outcome.escalationId?.startsWith('E-'))).toBe(true)
      await runCli(['audit', '--db', db, '--json'], cwd)
      const list = EscalationsListOutput.parse((await runCli(['escalations', 'list', '--db', db, '--json'], cwd)).json)
      expect(list.escalations.map((escalation) => escalation.findingId).sort()).toEqual(
        escalated.map((outcome) => outcome.findingId).sort(),
      )
      expect(list.escalations.every((escalation) => escalation.seen === 2)).toBe(true)

      const first = list.escalations[0]
      const shown = EscalationsShowOutput.parse(
        (await runCli(['escalations', 'show', first.id, '--db', db, '--json'], cwd)).json,
      )
      expect(shown.escalation.tried.length).toBeGreaterThan(0)
      expect(shown.escalation.nextStep.length).toBeGreaterThan(10)
      expect(Object.keys(shown.escalation.evidence).length).toBeGreaterThan(0)

      const closed = EscalationsCloseOutput.parse(
        (
          await runCli(
            [
              'escalations',
              'close',
              first.id,
              '--db',
              db,
              '--by',
              'carol',
              '--note',
              'counted and fixed in the ERP',
              '--json',
            ],
            cwd,
          )
        ).json,
      )
      expect(closed.escalation).toMatchObject({
        status: 'closed',
        closedBy: 'carol',
        note: 'counted and fixed in the ERP',
      })
      const open = EscalationsListOutput.parse((await runCli(['escalations', 'list', '--db', db, '--json'], cwd)).json)
      expect(open.escalations.map((escalation) => escalation.id)).not.toContain(first.id)
      expect((await runCli(['escalations', 'close', first.id, '--db', db, '--note', 'again'], cwd)).exitCode).toBe(2)
    },
  )
})
