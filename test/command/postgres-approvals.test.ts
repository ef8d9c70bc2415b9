import pg from 'pg'
import {afterAll, beforeEach, describe, expect, it} from 'vitest'

import {ApprovalsApproveOutput, ApprovalsListOutput, AuditOutput} from '../../src/cli/output-schemas.js'
import {PostgresStateStore} from '../../src/state/postgres-state.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'
import {createTestDatabase, postgresUnavailable} from '../helpers/postgres.js'

const skipReason = await postgresUnavailable()
if (skipReason) console.warn(`SKIPPING the PostgreSQL approvals tests: ${skipReason}`)

async function sql<T>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({connectionString: url})
  await client.connect()
  client.setTypeParser(20, Number)
  try {
    return (await client.query(text, params)).rows as T[]
  } finally {
    await client.end()
  }
}

/** A PostgreSQL inventory whose ledger_mismatch fixes are parked (every write above --approve-above 0). */
async function parkedInventory(cwd: string, url: string) {
  const init = await runCli(['inventory', 'init', '--inventory', url, '--seed', '5', '--json'], cwd)
  expect(init.exitCode, init.stderr).toBe(0)
  const audit = await runCli(
    ['audit', '--inventory', url, '--approve-above', '0', '--rule', 'ledger_mismatch', '--json'],
    cwd,
  )
  expect(audit.exitCode, audit.stderr).toBe(0)
  const parked = AuditOutput.parse(audit.json).outcomes.find((outcome) => outcome.outcome === 'parked')!
  expect(parked.approvalId).toMatch(/^A-/)
  return {parked, approvalId: parked.approvalId!}
}

describe.skipIf(skipReason !== undefined)('approvals with the inventory and the state store on PostgreSQL', () => {
  const databases: Array<Awaited<ReturnType<typeof createTestDatabase>>> = []
  let cwd: string
  let url: string
  beforeEach(async () => {
    const database = await createTestDatabase('approvals')
    databases.push(database)
    url = database.url
    cwd = temporaryDirectory()
  })
  afterAll(async () => {
    for (const database of databases) await database.drop()
  })

  it('keeps plans and approvals in schema invagent of the same database, and applies an approval once', async () => {
    const {parked, approvalId} = await parkedInventory(cwd, url)
    const stored = await sql<{id: string; status: string}>(url, 'SELECT id, status FROM invagent.approvals')
    expect(stored).toContainEqual({id: approvalId, status: 'pending'})
    const listed = await runCli(['approvals', 'list', '--inventory', url, '--json'], cwd)
    const list = ApprovalsListOutput.parse(listed.json)
    expect(list.approvals.map((approval) => approval.id)).toContain(approvalId)

    const part = async () =>
      (await sql<{on_hand: number}>(url, 'SELECT on_hand FROM parts WHERE id = $1', [parked.entity]))[0].on_hand
    const before = await part()
    const first = await runCli(['approvals', 'approve', approvalId, '--inventory', url, '--by', 'alice', '--json'], cwd)
    expect(first.exitCode, first.stderr).toBe(0)
    expect(ApprovalsApproveOutput.parse(first.json)).toMatchObject({status: 'applied', appliedNow: true})
    const after = await part()
    expect(after).not.toBe(before)
    const second = await runCli(['approvals', 'approve', approvalId, '--inventory', url, '--json'], cwd)
    expect(ApprovalsApproveOutput.parse(second.json)).toMatchObject({status: 'applied', appliedNow: false})
    expect(await part()).toBe(after)
    const actions = await sql<{n: number}>(url, 'SELECT count(*)::int AS n FROM agent_actions WHERE finding_id = $1', [
      parked.findingId,
    ])
    expect(actions[0].n).toBe(1)
  })

  it('says stale, with what changed, and applies nothing when a row in the scope changed after the plan', async () => {
    const {parked, approvalId} = await parkedInventory(cwd, url)
    await sql(url, 'UPDATE parts SET on_hand = on_hand + 1 WHERE id = $1', [parked.entity])
    const run = await runCli(['approvals', 'approve', approvalId, '--inventory', url, '--json'], cwd)
    expect(run.exitCode).toBe(1)
    const stale = ApprovalsApproveOutput.parse(run.json)
    expect(stale).toMatchObject({status: 'stale', appliedNow: false})
    expect(stale.changes.some((change) => change.startsWith(`parts ${parked.entity}: on_hand`))).toBe(true)
    const actions = await sql<{n: number}>(url, 'SELECT count(*)::int AS n FROM agent_actions WHERE finding_id = $1', [
      parked.findingId,
    ])
    expect(actions[0].n).toBe(0)
  })

  it('never stores or prints the password of the inventory URL; approve asks for it (regression)', async () => {
    const withPassword = new URL(url)
    withPassword.password = 'pw-not-to-keep'
    const secretUrl = withPassword.toString()
    const {approvalId} = await parkedInventory(cwd, secretUrl)
    const shown = await runCli(['approvals', 'show', approvalId, '--state', secretUrl, '--json'], cwd)
    expect(shown.exitCode, shown.stderr).toBe(0)
    expect(shown.stdout).not.toContain('pw-not-to-keep')
    expect(JSON.stringify(await sql(url, 'SELECT * FROM invagent.plans'))).not.toContain('pw-not-to-keep')
    const refused = await runCli(['approvals', 'approve', approvalId, '--state', secretUrl, '--json'], cwd)
    expect(refused.exitCode).toBe(2)
    expect(refused.stdout + refused.stderr).toContain('credentials are not stored with the plan')
    const approved = await runCli(['approvals', 'approve', approvalId, '--inventory', secretUrl, '--json'], cwd)
    expect(approved.exitCode, approved.stderr).toBe(0)
    expect(ApprovalsApproveOutput.parse(approved.json)).toMatchObject({status: 'applied', appliedNow: true})
  })

  it('lets exactly one of two stores deciding the same approval at once win (compare-and-set)', async () => {
    const {approvalId} = await parkedInventory(cwd, url)
    const stores = await Promise.all([PostgresStateStore.open(url), PostgresStateStore.open(url)])
    try {
      const decisions = await Promise.all(
        stores.map((store, index) =>
          store.decideApproval(approvalId, 'pending', {status: 'approving', by: `person-${index}`}),
        ),
      )
      expect(decisions.filter((decision) => decision !== undefined)).toHaveLength(1)
      const winner = decisions.find((decision) => decision !== undefined)!
      expect((await stores[0].getApproval(approvalId))?.decidedBy).toBe(winner.decidedBy)
    } finally {
      await Promise.all(stores.map((store) => store.close()))
    }
  })
})
