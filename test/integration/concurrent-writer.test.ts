import {join, resolve} from 'node:path'

import {DatabaseSync} from 'node:sqlite'

import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

import {AuditOutput} from '../../src/cli/output-schemas.js'
import {initInventory} from '../../src/simulate/generate.js'
import {temporaryDirectory} from '../helpers/cli.js'

const BIN = resolve(import.meta.dirname, '../../bin/run.js')
const WRITER = resolve(import.meta.dirname, '../fixtures/concurrency/writer.mjs')

/*
 * The inventory is never held while the engine thinks: an engine taking 2 s a step audits while
 * another process writes every 50 ms, and no write of that process waits longer than 250 ms.
 * (When a finding's conversation ran inside one write transaction, each write waited for the
 * whole finding: seconds.)
 */
async function auditWhileWriting(extra: string[]) {
  const directory = temporaryDirectory()
  const db = join(directory, 'inv.db')
  initInventory({path: db, parts: 200, days: 30, faults: 26, seed: 42})
  const audit = execa(
    process.execPath,
    [
      BIN,
      'audit',
      '--db',
      db,
      '--rule',
      'ledger_mismatch',
      '--max-findings',
      '2',
      '--step-delay',
      '2000',
      '--json',
      ...extra,
    ],
    {reject: false, stdin: 'ignore', cwd: directory},
  )
  const writer = execa(process.execPath, [WRITER, db, '11000'], {reject: false, stdin: 'ignore'})
  const [audited, written] = await Promise.all([audit, writer])
  expect(audited.exitCode, audited.stderr).toBe(0)
  expect(written.exitCode, written.stderr).toBe(0)
  return {
    db,
    report: AuditOutput.parse(JSON.parse(audited.stdout)),
    load: JSON.parse(written.stdout) as {writes: number; errors: string[]; maxMs: number; p99Ms: number},
  }
}

describe('a second process writing while audit runs with a slow engine', () => {
  it('waits under 250 ms for every write in apply mode, and the audit still applies its fixes', async () => {
    const {report, load} = await auditWhileWriting([])
    expect(report.outcomes.map((outcome) => outcome.outcome)).toContain('resolved')
    expect(report.outcomes.every((outcome) => outcome.outcome === 'resolved' || outcome.outcome === 'escalated')).toBe(
      true,
    )
    expect(load.errors).toEqual([])
    expect(load.writes).toBeGreaterThan(100)
    expect(load.maxMs).toBeLessThan(250)
  }, 60_000)

  it('waits under 250 ms for every write in --dry-run, and the audit writes nothing of its own', async () => {
    const {db, report, load} = await auditWhileWriting(['--dry-run'])
    expect(report.outcomes.map((outcome) => outcome.outcome)).toContain('would_resolve')
    expect(load.errors).toEqual([])
    expect(load.writes).toBeGreaterThan(100)
    expect(load.maxMs).toBeLessThan(250)
    const raw = new DatabaseSync(db, {readOnly: true})
    const actions = raw.prepare('SELECT count(*) AS n FROM agent_actions').get() as {n: number}
    raw.close()
    expect(actions.n).toBe(0)
  }, 60_000)
})
