import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {beforeAll, describe, expect, it} from 'vitest'

import {AuditOutput, DetectOutput, InventoryInitOutput} from '../../src/cli/output-schemas.js'
import {runCli, sha256OfFile, temporaryDirectory} from '../helpers/cli.js'

describe('invagent audit', () => {
  it('creates the demo inventory on a fresh folder and dry-runs it without changing a byte', async () => {
    const cwd = temporaryDirectory()
    const first = await runCli(['audit', '--dry-run', '--json'], cwd)
    expect(first.exitCode).toBe(0)
    const report = AuditOutput.parse(first.json)
    const db = join(cwd, '.invagent', 'inventory.db')
    expect(existsSync(db)).toBe(true)
    expect(report.dryRun).toBe(true)
    expect(report.summary.resolved).toBe(0)
    expect(report.summary.wouldResolve).toBeGreaterThan(10)
    expect(report.summary.escalated).toBeGreaterThan(5)
    expect(report.summary.failed).toBe(0)
    expect(report.outcomes.every((outcome) => outcome.actions.every((action) => action.applied === false))).toBe(true)

    const human = await runCli(['audit', '--dry-run'], cwd)
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toContain('would_resolve ✔ validated')
    expect(human.stdout).toMatch(/resolved 0 · would resolve \d+ · escalated \d+ · failed 0/)
    expect(human.stderr).not.toContain('created the demo inventory')
  })

  it('leaves the database file byte-identical in dry-run', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inv.db')
    expect((await runCli(['inventory', 'init', '--db', db, '--seed', '3'], cwd)).exitCode).toBe(0)
    const before = sha256OfFile(db)
    const run = await runCli(['audit', '--db', db, '--dry-run', '--json'], cwd)
    expect(run.exitCode).toBe(0)
    expect(AuditOutput.parse(run.json).summary.wouldResolve).toBeGreaterThan(0)
    expect(sha256OfFile(db)).toBe(before)
    expect(readdirSync(cwd).filter((name) => name.startsWith('inv.db-'))).toEqual([])
  })

  describe('apply mode', () => {
    let cwd: string
    let db: string
    let faults: ReturnType<typeof InventoryInitOutput.parse>['faults']
    let first: ReturnType<typeof AuditOutput.parse>

    beforeAll(async () => {
      cwd = temporaryDirectory()
      db = join(cwd, 'inv.db')
      const init = await runCli(['inventory', 'init', '--db', db, '--seed', '11', '--json'], cwd)
      faults = InventoryInitOutput.parse(init.json).faults
      const audit = await runCli(['audit', '--db', db, '--json'], cwd)
      expect(audit.exitCode).toBe(0)
      first = AuditOutput.parse(audit.json)
    })

    it('fixes every fixable fault and escalates the rest', () => {
      const outcomes = new Map(first.outcomes.map((outcome) => [outcome.findingId, outcome]))
      for (const fault of faults) {
        const outcome = outcomes.get(`${fault.rule}:${fault.entity}`)
        expect(outcome, `${fault.id} ${fault.rule}/${fault.rootCause}`).toBeDefined()
        expect(outcome!.outcome).toBe(fault.expected === 'fix' ? 'resolved' : 'escalated')
        expect(outcome!.rootCause).toBe(fault.rootCause)
        if (fault.expected === 'fix') expect(outcome!.actions.some((action) => action.applied)).toBe(true)
        else expect(outcome!.actions.filter((action) => action.applied)).toEqual([])
      }
    })

    it('leaves only the escalated findings for detect', async () => {
      const detect = await runCli(['detect', '--db', db, '--json'], cwd)
      const remaining = DetectOutput.parse(detect.json)
        .findings.map((finding) => finding.id)
        .sort()
      const escalated = first.outcomes
        .filter((outcome) => outcome.outcome === 'escalated')
        .map((outcome) => outcome.findingId)
        .sort()
      expect(remaining).toEqual(escalated)
    })

    it('changes nothing when run a second time', async () => {
      const before = sha256OfFile(db)
      const second = AuditOutput.parse((await runCli(['audit', '--db', db, '--json'], cwd)).json)
      expect(second.summary).toEqual({
        resolved: 0,
        wouldResolve: 0,
        parked: 0,
        deferred: 0,
        escalated: first.summary.escalated,
        failed: 0,
      })
      expect(sha256OfFile(db)).toBe(before)
    })

    it('wrote logs that verify, and reports a tampered one by line', async () => {
      const verify = await runCli(['log', 'verify', '--db', db, '--json'], cwd)
      expect(verify.exitCode).toBe(0)
      expect(verify.json.ok).toBe(true)
      expect(verify.json.files.length).toBeGreaterThanOrEqual(2)
    })
  })

  it('marks plans above the bound in dry-run, parks them without a TTY, and applies them with --yes', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inv.db')
    await runCli(['inventory', 'init', '--db', db, '--seed', '5'], cwd)
    const args = ['audit', '--db', db, '--approve-above', '0', '--rule', 'ledger_mismatch', '--json']
    const dry = AuditOutput.parse((await runCli([...args, '--dry-run'], cwd)).json)
    const drift = dry.outcomes.find((outcome) => outcome.rootCause === 'cache_drift')!
    expect(drift).toMatchObject({outcome: 'would_resolve', needsApproval: true, approvalId: null})
    expect(drift.summary).toContain('needs approval')
    const before = sha256OfFile(db)
    const parked = AuditOutput.parse((await runCli(args, cwd)).json)
    const parkedDrift = parked.outcomes.find((outcome) => outcome.findingId === drift.findingId)!
    expect(parkedDrift.outcome).toBe('parked')
    expect(parkedDrift.approvalId).toMatch(/^A-[0-9a-f]{8}$/)
    expect(parked.summary.parked).toBeGreaterThan(0)
    expect(sha256OfFile(db)).toBe(before)
    const approved = AuditOutput.parse((await runCli([...args, '--yes'], cwd)).json)
    expect(approved.outcomes.find((outcome) => outcome.findingId === drift.findingId)!.outcome).toBe('resolved')
  })

  it('defers the findings past --max-writes with one summary line, and the next run picks them up', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inv.db')
    await runCli(['inventory', 'init', '--db', db, '--seed', '11'], cwd)
    const capped = await runCli(['audit', '--db', db, '--max-writes', '3', '--json'], cwd)
    expect(capped.exitCode).toBe(0)
    const report = AuditOutput.parse(capped.json)
    const applied = report.outcomes.flatMap((outcome) => outcome.actions.filter((action) => action.applied))
    expect(applied.length).toBeLessThanOrEqual(3)
    expect(report.summary.deferred).toBeGreaterThan(0)
    expect(report.summary.failed).toBe(0)
    expect(
      report.outcomes
        .filter((outcome) => outcome.outcome === 'deferred')
        .every((outcome) => outcome.escalationId === null),
    ).toBe(true)
    expect(report.deferredNote).toBe(
      `${report.summary.deferred} finding(s) deferred: this run reached its cap of 3 writes (--max-writes); rerun to continue.`,
    )
    const human = await runCli(['audit', '--db', db, '--max-writes', '3'], cwd)
    expect(human.stdout.split('\n').filter((line) => line.includes('deferred:'))).toHaveLength(1)
    const next = AuditOutput.parse((await runCli(['audit', '--db', db, '--json'], cwd)).json)
    expect(next.summary.resolved).toBeGreaterThan(0)
    expect(next.summary.deferred).toBe(0)
  })

  it('uses one run id in --json, the log file name and lines, agent_actions and the state store', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inv.db')
    await runCli(['inventory', 'init', '--db', db, '--seed', '3'], cwd)
    const report = AuditOutput.parse((await runCli(['audit', '--db', db, '--json'], cwd)).json)
    expect(report.logFile.endsWith(`-${report.runId}.jsonl`)).toBe(true)
    const lines = readFileSync(report.logFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as {run: string})
    expect(new Set(lines.map((line) => line.run))).toEqual(new Set([report.runId]))
    const inventory = new DatabaseSync(db, {readOnly: true})
    const runs = inventory.prepare('SELECT DISTINCT run_id FROM agent_actions').all() as Array<{run_id: string}>
    inventory.close()
    expect(runs.map((found) => found.run_id)).toEqual([report.runId])
    expect(report.state).toBe(join(cwd, 'state.db'))
    const state = new DatabaseSync(report.state!, {readOnly: true})
    const stored = state.prepare('SELECT id, exit_code FROM runs').all() as Array<{id: string; exit_code: number}>
    const outcomeRuns = state.prepare('SELECT DISTINCT run_id FROM outcomes').all() as Array<{run_id: string}>
    state.close()
    expect(stored).toEqual([{id: report.runId, exit_code: 0}])
    expect(outcomeRuns.map((found) => found.run_id)).toEqual([report.runId])
  })

  it('refuses an unusable state store with exit code 3 before touching the inventory', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inv.db')
    await runCli(['inventory', 'init', '--db', db, '--seed', '3'], cwd)
    const before = sha256OfFile(db)
    const result = await runCli(['audit', '--db', db, '--state', cwd], cwd)
    expect(result.exitCode).toBe(3)
    expect(result.stderr).toContain('cannot open the state store')
    expect(sha256OfFile(db)).toBe(before)
  })

  it('refuses apply mode up front, with exit code 3 and the reason, on an inventory it cannot write', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inv.db')
    await runCli(['inventory', 'init', '--db', db, '--seed', '3'], cwd)
    // Another process holds the inventory's write lock for longer than invagent waits (5 s).
    const holder = new DatabaseSync(db)
    holder.exec('BEGIN IMMEDIATE')
    try {
      const refused = await runCli(['audit', '--db', db], cwd)
      expect(refused.exitCode).toBe(3)
      expect(refused.stderr).toContain('cannot write the inventory')
      expect(refused.stderr).toContain('--dry-run')
      expect(existsSync(join(cwd, 'logs'))).toBe(false)
    } finally {
      holder.exec('ROLLBACK')
      holder.close()
    }
  }, 30_000)

  it('writes nothing under the observe profile', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inv.db')
    await runCli(['inventory', 'init', '--db', db, '--seed', '6'], cwd)
    const before = sha256OfFile(db)
    const report = AuditOutput.parse((await runCli(['audit', '--db', db, '--profile', 'observe', '--json'], cwd)).json)
    expect(report.summary.resolved).toBe(0)
    expect(report.outcomes.every((outcome) => outcome.outcome === 'escalated')).toBe(true)
    expect(
      report.outcomes.some((outcome) => outcome.summary.includes('the "observe" permission profile does not allow')),
    ).toBe(true)
    expect(sha256OfFile(db)).toBe(before)
  })

  it('refuses a missing, corrupt or foreign database with exit code 3 and a next step', async () => {
    const cwd = temporaryDirectory()
    const missing = await runCli(['audit', '--db', join(cwd, 'nope.db')], cwd)
    expect(missing.exitCode).toBe(3)
    expect(missing.stderr).toContain('inventory database not found')
    expect(missing.stderr).toContain('invagent inventory init')
  })

  it('rejects an unknown rule with a suggestion', async () => {
    const cwd = temporaryDirectory()
    const result = await runCli(['audit', '--dry-run', '--rule', 'negative_onhand'], cwd)
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toContain('did you mean "negative_on_hand"')
  })
})
