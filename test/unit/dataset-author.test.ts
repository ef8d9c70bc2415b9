import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {authorExample, type AuthorPrompter} from '../../src/dataset/author.js'
import {validateDatasetFiles} from '../../src/dataset/validate.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

type Answer = string | boolean | ((message: string) => string)

/** Answers prompts from a script, in order, and records what was shown and asked. */
class ScriptedPrompter implements AuthorPrompter {
  readonly shown: string[] = []
  readonly asked: string[] = []
  readonly rejected: string[] = []
  private readonly answers: Answer[]

  constructor(answers: Answer[]) {
    this.answers = [...answers]
  }

  private take(message: string): Answer {
    this.asked.push(message)
    if (this.answers.length === 0) throw new Error(`no scripted answer left for "${message}"`)
    return this.answers.shift()!
  }

  async select<T extends string>(message: string, choices: ReadonlyArray<{name: string; value: T}>): Promise<T> {
    const answer = this.take(message)
    const value = typeof answer === 'function' ? answer(message) : answer
    const choice = choices.find((candidate) => candidate.value === value)
    if (!choice) throw new Error(`"${String(value)}" is not a choice of "${message}"`)
    return choice.value
  }

  async input(
    message: string,
    options?: {default?: string; validate?: (value: string) => true | string},
  ): Promise<string> {
    // Like inquirer: an invalid answer is refused with the validator's message and asked again.
    while (true) {
      const answer = this.take(message)
      let value = typeof answer === 'function' ? answer(message) : String(answer)
      if (value === '' && options?.default !== undefined) value = options.default
      const verdict = options?.validate?.(value) ?? true
      if (verdict === true) return value
      this.rejected.push(`${message}: ${verdict}`)
    }
  }

  async confirm(message: string): Promise<boolean> {
    return this.take(message) === true
  }

  show(text: string): void {
    this.shown.push(text)
  }
}

describe('dataset author', () => {
  it('steps a curator through a real sandbox: args checked as typed, real observations, a validated example appended', async () => {
    const directory = temporaryDirectory()
    const out = join(directory, 'authored.jsonl')
    const prompter = new ScriptedPrompter([
      'ledger_mismatch',
      'cache_drift',
      'Compare the cached on_hand with the ledger first.',
      'get_ledger_balance',
      '', // part_id: the finding's part is the default
      'The ledger is plausible and the cache drifted: recompute it.',
      'recompute_on_hand',
      '',
      'cache drifted from the ledger', // reason
      'Recomputed; ask for validation.',
      'resolve',
      'cache_drift',
      'Recomputed on_hand from the ledger.',
      true,
    ])
    const result = await authorExample({out, prompter, seed: 3})
    expect(result.problems).toEqual([])
    expect(result.appended).toBe(true)
    const example = result.example!
    expect(example.trajectory.map((step) => step.action.tool)).toEqual([
      'get_ledger_balance',
      'recompute_on_hand',
      'resolve',
    ])
    // The observation is what the tool really returned in the sandbox.
    const balance = example.trajectory[0].observation as {ok: true; result: {on_hand: number; ledger_balance: number}}
    expect(balance.ok).toBe(true)
    expect(balance.result.on_hand).not.toBe(balance.result.ledger_balance)
    expect(prompter.shown.some((text) => text.startsWith('Result: {"part_id"'))).toBe(true)
    expect(prompter.shown).toContain('Outcome: would_resolve — Recomputed on_hand from the ledger.')
    expect(example.meta).toEqual({
      rule: 'ledger_mismatch',
      rootCause: 'cache_drift',
      split: 'train',
      source: 'authored',
    })
    const lines = readFileSync(out, 'utf8').trim().split('\n')
    expect(lines).toHaveLength(1)
    expect((await validateDatasetFiles([out])).ok).toBe(true)
  })

  it("refuses arguments that fail the tool's schema and asks again", async () => {
    const directory = temporaryDirectory()
    const out = join(directory, 'authored.jsonl')
    const prompter = new ScriptedPrompter([
      'ledger_mismatch',
      'cache_drift',
      'Not sure; try a listing with a silly limit.',
      'list_transactions',
      '', // part_id default
      '', // external_ref skipped
      '', // status: (none)
      '', // kind: (none)
      '500', // limit above 50: refused
      'abc', // not an integer: refused
      '5',
      'Cannot tell; hand it over.',
      'escalate',
      'unknown',
      'not understood',
      'Gave up.',
    ])
    const result = await authorExample({out, prompter, seed: 3})
    expect(prompter.rejected).toEqual([
      'limit (optional, empty to skip) [integer]: Too big: expected number to be <=50',
      'limit (optional, empty to skip) [integer]: expected an integer, got "abc"',
    ])
    // Escalating a fixable root cause is not what the playbook should teach: nothing appended.
    expect(result.appended).toBe(false)
    expect(result.problems).toEqual([
      '/meta/rootCause: "cache_drift" but the last step\'s root_cause is "unknown"',
      'the outcome is escalated, but this root cause should end in a validated fix',
    ])
  })

  it('says how to run it when there is no terminal', async () => {
    const cwd = temporaryDirectory()
    const result = await runCli(['dataset', 'author'], cwd)
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toContain('dataset author is interactive and needs a terminal')
  })
})
