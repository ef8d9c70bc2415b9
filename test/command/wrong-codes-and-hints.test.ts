import {spawn} from 'node:child_process'
import {mkdirSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

import {AuditLog} from '../../src/agent/audit-log.js'
import {DoctorOutput, LogVerifyOutput} from '../../src/cli/output-schemas.js'
import {suggestCommand} from '../../src/hooks/command-not-found.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

const BIN = join(import.meta.dirname, '../../bin/run.js')

/** A child process that holds an exclusive lock on `db` until it is killed; resolves once the lock is held. */
async function holdExclusiveLock(db: string): Promise<() => void> {
  const script = `
    const {DatabaseSync} = require('node:sqlite')
    const db = new DatabaseSync(process.argv[1])
    db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE parts SET name = name')
    process.stdout.write('locked\\n')
    setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['-e', script, db], {stdio: ['ignore', 'pipe', 'inherit']})
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`the lock holder exited with ${code}`)))
  })
  return () => child.kill('SIGKILL')
}

describe('wrong error codes and missing hints', () => {
  it('reported a locked database as DB_CORRUPT', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inv.db')
    expect(
      (await runCli(['inventory', 'init', '--db', db, '--parts', '20', '--days', '2', '--faults', '2'], cwd)).exitCode,
    ).toBe(0)
    const release = await holdExclusiveLock(db)
    try {
      const run = await runCli(['detect', '--db', db, '--json'], cwd)
      expect(run.exitCode).toBe(3)
      expect(run.json.error.code).toBe('DB_LOCKED')
      expect(run.json.error.message).toContain('locked')
      expect(run.json.error.suggestions.join(' ')).toContain('wait')
    } finally {
      release()
    }
    expect((await runCli(['detect', '--db', db, '--json'], cwd)).exitCode).toBe(0)
  }, 30_000)

  it('gave a raw EISDIR for `log verify DIR`; a folder now means every log in it', async () => {
    const cwd = temporaryDirectory()
    const logs = join(cwd, 'some-logs')
    for (const run of ['run00001', 'run00002']) {
      const log = AuditLog.create(logs, run)
      log.append('run-finished', {})
      log.close()
    }
    const run = await runCli(['log', 'verify', logs, '--json'], cwd)
    expect(run.exitCode, run.stdout).toBe(0)
    expect(LogVerifyOutput.parse(run.json).files).toHaveLength(2)
    mkdirSync(join(cwd, 'empty'))
    const empty = await runCli(['log', 'verify', join(cwd, 'empty'), '--json'], cwd)
    expect(empty.exitCode).toBe(2)
    expect(empty.json.error.message).toContain('no audit logs')
    expect(empty.stdout).not.toContain('EISDIR')
  })

  it(
    'exited 3 from doctor on a fresh machine although the default engine needs nothing, and now says what ' +
      'each engine lacks',
    async () => {
      const cwd = temporaryDirectory()
      const result = await execa(process.execPath, [BIN, 'doctor', '--json'], {
        cwd,
        reject: false,
        stdin: 'ignore',
        env: {PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, INVAGENT_CACHE: join(cwd, 'empty-cache')},
        extendEnv: false,
      })
      expect(result.exitCode, result.stderr).toBe(0)
      const report = DoctorOutput.parse(JSON.parse(result.stdout))
      expect(report.ok).toBe(true)
      const engines = Object.fromEntries(report.engines.map((engine) => [engine.engine, engine]))
      expect(engines.rules).toEqual({engine: 'rules', ready: true, lacks: []})
      expect(engines.server.ready).toBe(false)
      expect(engines.server.lacks.join(' ')).toContain('llama-server')
      expect(engines.embedded.lacks.join(' ')).toContain('GGUF model')
      expect(report.checks.find((check) => check.id === 'llama-server')?.status).toBe('warn')
    },
    120_000,
  )

  it.each([
    [['audti'], 'Did you mean `invagent audit`?'],
    [['dataset', 'valdate', 'x.jsonl'], 'Did you mean `invagent dataset validate`?'],
    [['audit', '--dryrun'], 'Did you mean --dry-run?'],
    [['detect', '--rul', 'x'], 'Did you mean --rule?'],
  ])('gave no did-you-mean for %j', async (args, hint) => {
    const run = await runCli([...args, '--json'], temporaryDirectory())
    expect(run.exitCode).toBe(2)
    expect(Object.keys(run.json.error).sort()).toEqual(['code', 'message', 'suggestions'])
    expect(run.json.error.suggestions[0]).toContain(hint)
    const human = await runCli(args, temporaryDirectory())
    expect(human.exitCode).toBe(2)
    expect(human.stderr).toContain(hint)
  })

  it('suggests nothing for a word far from every command', () => {
    expect(suggestCommand('xyzzy', ['audit', 'detect', 'dataset:validate'])).toBeUndefined()
    expect(suggestCommand('dataset:valdate:file.jsonl', ['audit', 'dataset:validate', 'dataset:generate'])).toBe(
      'dataset:validate',
    )
  })
})
