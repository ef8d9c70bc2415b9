import {copyFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {DatabaseSync} from 'node:sqlite'
import {setTimeout as sleep} from 'node:timers/promises'

import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

import {initInventory} from '../../src/simulate/generate.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

const BIN = resolve(import.meta.dirname, '../../bin/run.js')

function inventoryState(path: string): unknown {
  const db = new DatabaseSync(path, {readOnly: true})
  try {
    return ['parts', 'transactions', 'reservations'].map((table) =>
      db.prepare(`SELECT * FROM ${table} ORDER BY id`).all(),
    )
  } finally {
    db.close()
  }
}

function actionCount(path: string): number {
  try {
    const db = new DatabaseSync(path, {readOnly: true})
    try {
      return Number((db.prepare('SELECT count(*) AS n FROM agent_actions').get() as {n: number}).n)
    } finally {
      db.close()
    }
  } catch {
    return 0 // locked by the writer at this instant
  }
}

describe('an audit killed mid-run', () => {
  it('leaves nothing half-applied, and the next audit finishes to the same state as an uninterrupted one', async () => {
    const directory = temporaryDirectory()
    const killed = join(directory, 'killed.db')
    const reference = join(directory, 'reference.db')
    // Few enough faults that one run stays under the default bound of 1,000 writes per run.
    initInventory({path: killed, parts: 3000, days: 10, faults: 700, seed: 77})
    copyFileSync(killed, reference)

    const child = execa(process.execPath, [BIN, 'audit', '--db', killed, '--json'], {reject: false, stdin: 'ignore'})
    const deadline = Date.now() + 30_000
    while (actionCount(killed) < 50 && Date.now() < deadline) await sleep(20)
    child.kill('SIGKILL')
    const result = await child
    expect(result.signal).toBe('SIGKILL')

    const partial = actionCount(killed)
    expect(partial).toBeGreaterThan(0)
    const resumed = await runCli(['audit', '--db', killed, '--json'], directory)
    expect(resumed.exitCode).toBe(0)
    expect(resumed.json.summary.failed).toBe(0)
    expect(resumed.json.summary.resolved).toBeGreaterThan(0)

    const uninterrupted = await runCli(['audit', '--db', reference, '--json'], directory)
    expect(uninterrupted.exitCode).toBe(0)
    expect(inventoryState(killed)).toEqual(inventoryState(reference))
    expect(actionCount(killed)).toBe(actionCount(reference))
    // Three audits of 700 faults, each fix its own committed unit: a minute and more on a busy 2-core machine.
  }, 180_000)
})

describe('an audit killed inside its apply unit', () => {
  it('rolls that unit back, and the rerun applies every fix exactly once', async () => {
    const directory = temporaryDirectory()
    const killed = join(directory, 'killed.db')
    const reference = join(directory, 'reference.db')
    initInventory({path: killed, parts: 200, days: 30, faults: 26, seed: 42})
    copyFileSync(killed, reference)
    const before = inventoryState(killed)

    // INVAGENT_CRASH_AT=apply-write: SIGKILL right after the first write of the first apply unit.
    const crashed = await runCli(['audit', '--db', killed, '--json'], directory, {INVAGENT_CRASH_AT: 'apply-write'})
    expect(crashed.exitCode).not.toBe(0)
    expect(inventoryState(killed)).toEqual(before)
    expect(actionCount(killed)).toBe(0)

    const rerun = await runCli(['audit', '--db', killed, '--json'], directory)
    expect(rerun.exitCode).toBe(0)
    const uninterrupted = await runCli(['audit', '--db', reference, '--json'], directory)
    expect(inventoryState(killed)).toEqual(inventoryState(reference))
    expect(actionCount(killed)).toBe(actionCount(reference))
    expect(actionCount(killed)).toBe(
      uninterrupted.json.outcomes.flatMap((outcome: {actions: Array<{applied: boolean}>}) =>
        outcome.actions.filter((action) => action.applied),
      ).length,
    )
  })
})
