import {readdirSync, readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {DetectOutput, OUTPUT_SCHEMAS} from '../../src/cli/output-schemas.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'
import {assertJsonContract, commandIdOf, contractProblems} from '../helpers/json-contract.js'

const TEST_ROOT = resolve(import.meta.dirname, '..')

/** Every test source, for the coverage check below. */
function testSources(): string[] {
  const files: string[] = []
  const walk = (directory: string) => {
    for (const entry of readdirSync(directory, {withFileTypes: true})) {
      if (entry.isDirectory()) walk(join(directory, entry.name))
      else if (entry.name.endsWith('.test.ts')) files.push(readFileSync(join(directory, entry.name), 'utf8'))
    }
  }
  walk(TEST_ROOT)
  return files
}

describe('the --json contract had a hole: tests parsed with zod, which drops unknown fields', () => {
  it('a field the committed schema does not have passes zod but fails the contract check', () => {
    const withExtraField = {findings: [], elapsedMs: 12}
    expect(() => DetectOutput.parse(withExtraField)).not.toThrow()
    expect(contractProblems('detect', withExtraField)).toEqual([
      'detect: / must NOT have additional properties "elapsedMs"',
    ])
    expect(() => assertJsonContract(['detect', '--json'], JSON.stringify(withExtraField))).toThrow(/elapsedMs/)
  })

  it('an error with more than code, message and suggestions fails the error contract', () => {
    expect(contractProblems('audit', {error: {code: 'X', message: 'm', suggestions: []}})).toEqual([])
    expect(contractProblems('audit', {error: {code: 'X', message: 'm', suggestions: [], oclif: {exit: 2}}})).toEqual([
      'error: /error must NOT have additional properties "oclif"',
    ])
    // Beside the error, anything else is checked against the command's own schema, and fails there.
    expect(
      contractProblems('detect', {error: {code: 'X', message: 'm', suggestions: []}, parse: {}}).length,
    ).toBeGreaterThan(0)
  })

  it('checks JSON Lines line by line for serve', () => {
    expect(() => assertJsonContract(['serve', '--json'], '{"event":"stopped","url":"x"}\nnot json\n')).toThrow(
      /not JSON/,
    )
  })

  it('knows the command id of an argument list', () => {
    expect(commandIdOf(['dataset', 'validate', 'x.jsonl', '--json'])).toBe('dataset validate')
    expect(commandIdOf(['train', 'status', '--json'])).toBe('train status')
    expect(commandIdOf(['train', '--json'])).toBe('train')
    expect(commandIdOf(['detect', '--db', 'x'])).toBe('detect')
  })

  it('every command with a --json output has a test that runs it and checks its raw stdout', () => {
    const sources = testSources().join('\n')
    // runCli checks the contract of every --json run; these two are checked where they can run.
    const checkedElsewhere: Record<string, string> = {
      'dataset author': 'needs a terminal: test/unit/dataset-author.test.ts checks its result with contractProblems',
      'inventory serve': 'a server: test/command/inventory-serve.test.ts checks its ready line and its result',
      serve: 'needs llama-server: test/integration/llama-server.test.ts checks its JSON Lines with assertJsonContract',
      error: 'the failure output of every command: checked on every failing --json run',
    }
    const unchecked = Object.keys(OUTPUT_SCHEMAS).filter((id) => {
      if (id in checkedElsewhere) return false
      // However the call is wrapped: `runCli(['a', 'b', …, '--json']` on one line or over several.
      const words = id
        .split(' ')
        .map((word) => `'${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'`)
        .join(',\\s*')
      return !new RegExp(`runCli\\(\\s*\\[\\s*${words}[^\\]]*'--json'`).test(sources)
    })
    expect(unchecked).toEqual([])
  })

  it.each([
    [['tools', '--json']],
    [['detect', '--db', 'missing.db', '--json']],
    [['inventory', 'init', '--db', 'inv.db', '--parts', '20', '--days', '2', '--faults', '2', '--json']],
  ])('%j prints stdout that the committed schema accepts as is', async (args) => {
    const run = await runCli(args, temporaryDirectory())
    const id = run.json.error ? 'error' : commandIdOf(args)!
    expect(contractProblems(id, JSON.parse(run.stdout))).toEqual([])
  })
})
