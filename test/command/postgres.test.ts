import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {
  AuditOutput,
  DetectOutput,
  DoctorOutput,
  InventoryIndexOutput,
  InventoryInitOutput,
} from '../../src/cli/output-schemas.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'
import {createTestDatabase, postgresUnavailable} from '../helpers/postgres.js'

const skipReason = await postgresUnavailable()
if (skipReason) console.warn(`SKIPPING the PostgreSQL command tests: ${skipReason}`)

const SIZE = ['--parts', '150', '--days', '15', '--faults', '26', '--seed', '4']

describe.skipIf(skipReason !== undefined)(
  'the CLI on a PostgreSQL inventory (--inventory, INVAGENT_INVENTORY, invagent.yaml)',
  () => {
    let database: Awaited<ReturnType<typeof createTestDatabase>>
    let cwd: string

    beforeAll(async () => {
      database = await createTestDatabase('cli')
      cwd = temporaryDirectory()
    })
    afterAll(async () => {
      await database?.drop()
    })

    it('inventory init loads the same inventory as on SQLite, and detect finds the same findings', async () => {
      const init = await runCli(['inventory', 'init', '--inventory', database.url, ...SIZE, '--json'], cwd)
      expect(init.exitCode, init.stderr).toBe(0)
      const sqliteInit = await runCli(['inventory', 'init', '--db', join(cwd, 'inv.db'), ...SIZE, '--json'], cwd)
      const postgres = InventoryInitOutput.parse(init.json)
      const sqlite = InventoryInitOutput.parse(sqliteInit.json)
      expect({...postgres, db: ''}).toEqual({...sqlite, db: ''})
      const onPostgres = await runCli(['detect', '--inventory', database.url, '--json'], cwd)
      const onSqlite = await runCli(['detect', '--inventory', `sqlite:${join(cwd, 'inv.db')}`, '--json'], cwd)
      expect(onPostgres.exitCode, onPostgres.stderr).toBe(0)
      expect(DetectOutput.parse(onPostgres.json).findings.length).toBeGreaterThan(20)
      expect(onPostgres.json).toEqual(onSqlite.json)
    })

    it('takes the inventory from INVAGENT_INVENTORY and from invagent.yaml, password as ${ENV_VAR}', async () => {
      const fromEnv = await runCli(['detect', '--rule', 'negative_on_hand', '--json'], cwd, {
        INVAGENT_INVENTORY: database.url,
      })
      expect(fromEnv.exitCode, fromEnv.stderr).toBe(0)
      const configDirectory = temporaryDirectory()
      const url = new URL(database.url)
      url.password = '${INVAGENT_TEST_PGPASSWORD}'
      writeFileSync(
        join(configDirectory, 'invagent.yaml'),
        `inventory: ${url.toString().replace('%7B', '{').replace('%7D', '}').replace('$%7B', '${')}\n`,
      )
      const fromConfig = await runCli(['detect', '--rule', 'negative_on_hand', '--json'], configDirectory, {
        INVAGENT_TEST_PGPASSWORD: 'trust-ignores-it',
      })
      expect(fromConfig.exitCode, fromConfig.stderr).toBe(0)
      expect(fromConfig.json).toEqual(fromEnv.json)
      const unset = await runCli(['detect'], configDirectory)
      expect(unset.exitCode).toBe(3)
      expect(unset.stderr).toContain('invagent.yaml:1:12: ${INVAGENT_TEST_PGPASSWORD} is not set')
    })

    it('audits in dry-run without changing a row, then applies, with the password never in the output', async () => {
      const withPassword = database.url.replace('postgres@', 'postgres:hunter2@')
      const before = await runCli(['detect', '--inventory', database.url, '--json'], cwd)
      const dryRun = await runCli(['audit', '--inventory', withPassword, '--dry-run', '--json'], cwd)
      expect(dryRun.exitCode, dryRun.stderr).toBe(0)
      const report = AuditOutput.parse(dryRun.json)
      expect(report.summary.wouldResolve).toBeGreaterThan(10)
      expect(report.db).toContain('postgres:***@')
      expect(dryRun.stdout + dryRun.stderr).not.toContain('hunter2')
      expect((await runCli(['detect', '--inventory', database.url, '--json'], cwd)).json).toEqual(before.json)
      const applied = await runCli(['audit', '--inventory', database.url, '--json'], cwd)
      expect(AuditOutput.parse(applied.json).summary.resolved).toBe(report.summary.wouldResolve)
    })

    it('inventory indexes says every index is there; doctor says what the inventory is', async () => {
      const indexes = await runCli(['inventory', 'indexes', '--inventory', database.url, '--json'], cwd)
      expect(InventoryIndexOutput.parse(indexes.json).created).toEqual([])
      const doctor = await runCli(
        ['doctor', '--inventory', database.url.replace('postgres@', 'postgres:hunter2@'), '--json'],
        cwd,
      )
      const report = DoctorOutput.parse(doctor.json)
      expect(report.inventory).toMatchObject({
        kind: 'postgres',
        reachable: true,
        parts: 150,
        missingIndexes: [],
        source: 'flag --inventory',
      })
      expect(report.inventory.server).toMatch(/^PostgreSQL \d+/)
      expect(report.checks.find((check) => check.id === 'inventory')).toMatchObject({status: 'ok'})
      expect(doctor.stdout).not.toContain('hunter2')
    })

    it('doctor reports an unreachable server as missing (exit 3) with the next step', async () => {
      const doctor = await runCli(['doctor', '--inventory', 'postgres://postgres@127.0.0.1:1/nothing', '--json'], cwd)
      expect(doctor.exitCode).toBe(3)
      const report = DoctorOutput.parse(doctor.json)
      expect(report.inventory).toMatchObject({
        reachable: false,
        error: expect.stringContaining('cannot reach PostgreSQL'),
      })
      expect(report.checks.find((check) => check.id === 'inventory')).toMatchObject({
        status: 'missing',
        nextStep: expect.stringContaining('pg_isready'),
      })
    })

    it('refuses --inventory with --db, and an unknown scheme, as bad input (exit 2)', async () => {
      const both = await runCli(['detect', '--inventory', database.url, '--db', 'x.db'], cwd)
      expect(both.exitCode).toBe(2)
      expect(both.stderr).toContain('--inventory and --db both name an inventory')
      const typo = await runCli(['detect', '--inventory', 'postgress://h/db'], cwd)
      expect(typo.exitCode).toBe(2)
      expect(typo.stderr).toContain('Did you mean "postgres:"?')
    })
  },
)
