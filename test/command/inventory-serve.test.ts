import {writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

import {ApprovalsApproveOutput, AuditOutput, InventoryServeOutput} from '../../src/cli/output-schemas.js'
import {HttpInventory} from '../../src/inventory/http/http-backend.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'
import {assertJsonContract} from '../helpers/json-contract.js'
import {createTestDatabase, postgresUnavailable} from '../helpers/postgres.js'

const pgSkip = await postgresUnavailable()

const BIN = resolve(import.meta.dirname, '../../bin/run.js')

/** Starts `inventory serve --json` as a child process and waits for its ready line. */
async function serve(args: string[], cwd: string, env: Record<string, string> = {}) {
  const child = execa(process.execPath, [BIN, 'inventory', 'serve', '--port', '0', '--json', ...args], {
    cwd,
    env: {...process.env, ...env},
    reject: false,
    stdin: 'ignore',
  })
  let stdout = ''
  const ready = await new Promise<ReturnType<typeof InventoryServeOutput.parse>>((resolveReady, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      const line = stdout.split('\n').find((candidate) => candidate.includes('"ready"'))
      if (line) resolveReady(InventoryServeOutput.parse(JSON.parse(line)))
    })
    void child.then((result) => reject(new Error(`inventory serve exited before it was ready: ${result.stderr}`)))
  })
  return {child, ready, stdout: () => stdout}
}

describe('invagent inventory serve', () => {
  const servesWithToken =
    'serves an inventory to the HTTP backend with a token, logs each write to stderr, and stops on SIGTERM'
  it(servesWithToken, async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inventory.db')
    expect(
      (await runCli(['inventory', 'init', '--db', db, '--parts', '60', '--faults', '8', '--seed', '5'], cwd)).exitCode,
    ).toBe(0)
    writeFileSync(join(cwd, 'token'), 'serve-test-token\n')
    const {child, ready, stdout} = await serve(['--inventory', db, '--token-file', join(cwd, 'token')], cwd)
    expect(ready).toMatchObject({event: 'ready', auth: 'bearer', host: '127.0.0.1'})
    const direct = SqliteInventory.open(db, {readOnly: true})
    const expected = await direct.detect()
    direct.close()

    const http = await HttpInventory.open({
      baseUrl: ready.url,
      token: 'serve-test-token',
      mirrorPath: join(cwd, 'mirror.db'),
    })
    expect(await http.detect()).toEqual(expected)
    const part = expected.find((finding) => finding.rule === 'ledger_mismatch')!.entity
    const written = await http.sendWrite(
      'recompute_on_hand',
      {part_id: part, reason: 'cache drift'},
      {runId: 'cli', findingId: 'f', idempotencyKey: 'cli-test-key-1'},
    )
    expect(written.applied).toBe(true)
    http.close()

    child.kill('SIGTERM')
    const result = await child
    expect(result.exitCode).toBe(0)
    // The ready line, then run()'s result (oclif prints it indented).
    const [first, ...rest] = stdout().trim().split('\n')
    // Two documents: the ready line, and the result printed when it stops.
    assertJsonContract(['inventory', 'serve', '--json'], first)
    assertJsonContract(['inventory', 'serve', '--json'], rest.join('\n'))
    expect(InventoryServeOutput.parse(JSON.parse(first))).toEqual(ready)
    expect(InventoryServeOutput.parse(JSON.parse(rest.join('\n')))).toMatchObject({
      event: 'stopped',
      writes: 1,
      url: ready.url,
    })
    const logged = result.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line))
    expect(logged).toEqual([
      expect.objectContaining({
        tool: 'recompute_on_hand',
        idempotency_key: 'cli-test-key-1',
        run_id: 'cli',
        outcome: 'applied',
        target: {part_id: part},
      }),
    ])
    expect(result.stderr).not.toContain('serve-test-token')
  })

  it('audits over HTTP from the CLI: detect, a parked plan, and approvals approve applying it once', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inventory.db')
    expect((await runCli(['inventory', 'init', '--db', db, '--seed', '5'], cwd)).exitCode).toBe(0)
    writeFileSync(join(cwd, 'token'), 'audit-token-1\n')
    const {child, ready} = await serve(['--inventory', db, '--token-file', join(cwd, 'token')], cwd)
    const env = {INVAGENT_TOKEN: 'audit-token-1'}
    try {
      const detected = await runCli(['detect', '--inventory', ready.url, '--json'], cwd, env)
      expect(detected.exitCode, detected.stderr).toBe(0)
      const direct = await runCli(['detect', '--db', db, '--json'], cwd)
      expect(detected.json).toEqual(direct.json)

      const audit = await runCli(
        ['audit', '--inventory', ready.url, '--approve-above', '0', '--rule', 'ledger_mismatch', '--json'],
        cwd,
        env,
      )
      expect(audit.exitCode, audit.stderr).toBe(0)
      const parked = AuditOutput.parse(audit.json).outcomes.find((outcome) => outcome.outcome === 'parked')!
      expect(parked.approvalId).toMatch(/^A-/)
      const partCache = () => {
        const inventory = SqliteInventory.open(db, {readOnly: true})
        try {
          return inventory.db.get<{on_hand: number}>('SELECT on_hand FROM parts WHERE id = ?', parked.entity)!.on_hand
        } finally {
          inventory.close()
        }
      }
      const before = partCache()
      // The plan recorded the URL: approve applies it over HTTP, from the state store in .invagent/.
      const approve = ['approvals', 'approve', parked.approvalId!, '--inventory', ready.url, '--json']
      const first = await runCli(approve, cwd, env)
      expect(first.exitCode, first.stderr).toBe(0)
      expect(ApprovalsApproveOutput.parse(first.json)).toMatchObject({status: 'applied', appliedNow: true})
      const after = partCache()
      expect(after).not.toBe(before)
      const second = await runCli(approve, cwd, env)
      expect(ApprovalsApproveOutput.parse(second.json)).toMatchObject({status: 'applied', appliedNow: false})
      expect(partCache()).toBe(after)
    } finally {
      child.kill('SIGTERM')
      await child
    }
  })

  it('refuses a non-loopback bind without a token (exit 2)', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inventory.db')
    await runCli(['inventory', 'init', '--db', db, '--parts', '20', '--faults', '2'], cwd)
    const refused = await runCli(['inventory', 'serve', '--inventory', db, '--host', '0.0.0.0', '--port', '0'], cwd, {
      INVAGENT_TOKEN: '',
    })
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toContain('without a token')
  })

  it.skipIf(pgSkip !== undefined)(
    'serves a PostgreSQL inventory: detect over HTTP equals detect on the database, the password never shown',
    async () => {
      const cwd = temporaryDirectory()
      const database = await createTestDatabase('serve')
      try {
        const withPassword = new URL(database.url)
        withPassword.password = 'pw-not-shown'
        const url = withPassword.toString()
        const init = await runCli(['inventory', 'init', '--inventory', url, '--parts', '60', '--faults', '8'], cwd)
        expect(init.exitCode, init.stderr).toBe(0)
        const {child, ready, stdout} = await serve(['--inventory', url], cwd)
        try {
          expect(ready.inventory).not.toContain('pw-not-shown')
          const overHttp = await runCli(['detect', '--inventory', ready.url, '--json'], cwd)
          expect(overHttp.exitCode, overHttp.stderr).toBe(0)
          const direct = await runCli(['detect', '--inventory', url, '--json'], cwd)
          expect(overHttp.json).toEqual(direct.json)
        } finally {
          child.kill('SIGTERM')
          const result = await child
          expect(stdout() + result.stderr).not.toContain('pw-not-shown')
        }
      } finally {
        await database.drop()
      }
    },
  )
})
