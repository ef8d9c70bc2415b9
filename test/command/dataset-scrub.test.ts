import {copyFileSync, readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {DatasetScrubOutput} from '../../src/cli/output-schemas.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

const FIXTURE = resolve(import.meta.dirname, '../fixtures/dataset/scrub-sample.jsonl')

/** PII written in the fixture: none of it may reach stdout or stderr unless --show-values. */
const PII = [
  'Jane Doe',
  'jane.doe@acme-logistics.com',
  '07700 900123',
  '+44 20 7946 0958',
  'Okafor',
  'Maria Gonzalez',
  'maria.gonzalez@example-erp.com',
  '555-123-4567',
  'Pieter van der Berg',
  'José García',
]

/** oclif wraps error messages at the terminal width and prefixes each line with " ›": undo both. */
function unwrapped(stderr: string): string {
  return stderr.replace(/\s*\n\s*›\s+/g, ' ').replace(/^\s*›\s+/, '')
}

function workspace(): string {
  const cwd = temporaryDirectory()
  copyFileSync(FIXTURE, join(cwd, 'sample.jsonl'))
  return cwd
}

describe('invagent dataset scrub', () => {
  it('--json: writes FILE.scrubbed.jsonl, reports every change without the values, exits 1 for the line that is not JSON', async () => {
    const cwd = workspace()
    const result = await runCli(['dataset', 'scrub', 'sample.jsonl', '--json'], cwd)
    expect(result.exitCode, result.stderr).toBe(1)
    const output = DatasetScrubOutput.parse(result.json)
    expect(output).toMatchObject({
      input: join(cwd, 'sample.jsonl'),
      output: join(cwd, 'sample.scrubbed.jsonl'),
      inPlace: false,
      lines: 5,
      linesChanged: 3,
      counts: {email: 4, phone: 4, name: 11},
      changesNotListed: 0,
      unparsableLines: 1,
      unparsable: [{line: 3, message: "not JSON: Unexpected token '/'"}],
    })
    expect(output.changes).toHaveLength(19)
    const perLine: Record<number, number> = {}
    for (const change of output.changes) perLine[change.line] = (perLine[change.line] ?? 0) + 1
    expect(perLine).toEqual({1: 8, 4: 8, 5: 3})
    expect(output.changes[0]).toEqual({
      line: 1,
      pointer: '/input/context',
      kind: 'name',
      after: expect.stringMatching(/^\p{Lu}\p{Ll}+ \p{Lu}\p{Ll}+$/u),
    })
    for (const value of PII) expect(result.stdout + result.stderr, value).not.toContain(value)

    const scrubbed = readFileSync(join(cwd, 'sample.scrubbed.jsonl'), 'utf8')
    for (const change of output.changes) expect(scrubbed).toContain(change.after)
    for (const value of PII)
      expect(
        scrubbed
          .split('\n')
          .filter((_line, index) => index !== 2)
          .join('\n'),
        value,
      ).not.toContain(value)
  })

  it('--show-values adds what was replaced; --in-place on the scrubbed copy changes nothing', async () => {
    const cwd = workspace()
    const shown = await runCli(
      ['dataset', 'scrub', 'sample.jsonl', '--out', 'clean.jsonl', '--show-values', '--json'],
      cwd,
    )
    const output = DatasetScrubOutput.parse(shown.json)
    expect(output.changes.slice(0, 3).map((change) => change.before)).toEqual([
      'Jane Doe',
      'jane.doe@acme-logistics.com',
      '07700 900123',
    ])

    const before = readFileSync(join(cwd, 'clean.jsonl'), 'utf8')
    const again = await runCli(['dataset', 'scrub', 'clean.jsonl', '--in-place', '--json'], cwd)
    expect(DatasetScrubOutput.parse(again.json)).toMatchObject({
      inPlace: true,
      linesChanged: 0,
      changes: [],
      counts: {email: 0, phone: 0, name: 0},
    })
    expect(readFileSync(join(cwd, 'clean.jsonl'), 'utf8')).toBe(before)
  })

  it('prints a table of line, field and kind for people, without the values', async () => {
    const cwd = workspace()
    const result = await runCli(['dataset', 'scrub', 'sample.jsonl'], cwd)
    expect(result.stdout).toMatch(/^line\s+field\s+kind\s+pseudonym$/m)
    expect(result.stdout).toMatch(
      /^1\s+\/trajectory\/0\/observation\/events\/1\/message\s+phone\s+\+1 \d{3}-555-01\d\d$/m,
    )
    expect(result.stdout).toContain("line 3: not JSON: Unexpected token '/'; left as it was, unscrubbed")
    expect(result.stdout).toContain(
      '5 lines, 3 changed: 4 emails, 4 phone numbers, 11 names replaced → sample.scrubbed.jsonl',
    )
    for (const value of PII) expect(result.stdout + result.stderr, value).not.toContain(value)
    const shown = await runCli(['dataset', 'scrub', 'sample.jsonl', '--show-values'], cwd)
    expect(shown.stdout).toMatch(/^line\s+field\s+kind\s+before\s+after$/m)
    expect(shown.stdout).toMatch(
      /^1\s+\/input\/context\s+email\s+jane\.doe@acme-logistics\.com\s+person-[0-9a-f]{6}@example\.invalid$/m,
    )
  })

  it('refuses to overwrite its input without --in-place, and says so', async () => {
    const cwd = workspace()
    const result = await runCli(['dataset', 'scrub', 'sample.jsonl', '--out', 'sample.jsonl'], cwd)
    expect(result.exitCode).toBe(2)
    const stderr = unwrapped(result.stderr)
    expect(stderr).toContain('Error: refusing to overwrite the input sample.jsonl with its scrubbed copy')
    expect(stderr).toContain('Try this: Pass --in-place to replace the input, or --out with another path.')
    expect(readFileSync(join(cwd, 'sample.jsonl'), 'utf8')).toBe(readFileSync(FIXTURE, 'utf8'))
  })
})
