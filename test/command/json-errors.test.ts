import {homedir} from 'node:os'

import {describe, expect, it} from 'vitest'

import {describeError} from '../../src/cli/base-command.js'
import {UserError} from '../../src/errors.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

const SECRET = 'scrub-key-9f8e7d6c5b4a'

describe('errors under --json leaked oclif parse context, secrets of the environment and home paths', () => {
  it.each([
    [['detect', '--bogus', '--json']],
    [['dataset', 'scrub', '--bogus', '--json']],
    [['audit', '--dry-run', '--engine', 'nonsense', '--json']],
    [['dataset', 'validate', '--json']],
  ])('%j prints {"error": {code, message, suggestions}} and nothing else', async (args) => {
    const cwd = temporaryDirectory()
    const run = await runCli(args, cwd, {INVAGENT_SCRUB_KEY: SECRET, INVAGENT_API_KEY: `api-${SECRET}`})
    expect(run.exitCode).toBe(2)
    expect(Object.keys(run.json)).toEqual(['error'])
    expect(Object.keys(run.json.error).sort()).toEqual(['code', 'message', 'suggestions'])
    expect(run.json.error.code).toBe('USAGE_ERROR')
    expect(typeof run.json.error.message).toBe('string')
    expect(run.json.error.suggestions.length).toBeGreaterThan(0)
    expect(run.stdout.length).toBeLessThan(2000)
    for (const leak of [SECRET, homedir(), '.config', 'argv']) expect(run.stdout).not.toContain(leak)
  })

  it('keeps the code, message and next step of invagent errors', async () => {
    const run = await runCli(['detect', '--db', 'missing.db', '--json'], temporaryDirectory())
    expect(run.exitCode).toBe(3)
    expect(run.json).toEqual({
      error: {
        code: 'DB_NOT_FOUND',
        message: expect.stringContaining('missing.db'),
        suggestions: [expect.stringContaining('inventory init')],
      },
    })
  })

  it('never prints a secret of the environment in human errors either', async () => {
    const run = await runCli(['dataset', 'scrub', '--bogus'], temporaryDirectory(), {INVAGENT_SCRUB_KEY: SECRET})
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toContain('Nonexistent flag')
    expect(run.stdout + run.stderr).not.toContain(SECRET)
  })

  it('redacts a secret that an error message repeats', () => {
    const previous = process.env.INVAGENT_API_KEY
    process.env.INVAGENT_API_KEY = `api-${SECRET}`
    try {
      const described = describeError(
        new UserError(`the server refused the key api-${SECRET}`, {suggestions: [`check api-${SECRET}`]}),
      )
      expect(JSON.stringify(described)).not.toContain(SECRET)
      expect(described.message).toBe('the server refused the key [redacted-secret]')
    } finally {
      if (previous === undefined) delete process.env.INVAGENT_API_KEY
      else process.env.INVAGENT_API_KEY = previous
    }
  })
})
