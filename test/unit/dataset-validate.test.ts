import {readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {findPii} from '../../src/dataset/pii.js'
import {validateDatasetFiles, type DatasetProblem} from '../../src/dataset/validate.js'
import {redactText} from '../../src/util/redact.js'
import {temporaryDirectory} from '../helpers/cli.js'

const fixture = (name: string) => join('test/fixtures/dataset', name)
const ROOT = resolve(import.meta.dirname, '../..')

async function messages(name: string, options: Parameters<typeof validateDatasetFiles>[1] = {}): Promise<string[]> {
  const report = await validateDatasetFiles([fixture(name)], options)
  return report.problems.map((problem) => `${problem.file}:${problem.line}:${problem.column}: ${problem.message}`)
}

/** The text a problem's column points at, so a wrong column fails even when the message is right. */
function textAt(problem: DatasetProblem, length: number): string {
  const line = readFileSync(resolve(ROOT, problem.file), 'utf8').split('\n')[problem.line - 1]
  return line.slice(problem.column - 1, problem.column - 1 + length)
}

process.chdir(ROOT)

describe('dataset validate: one fixture per kind of problem, exact file:line:col messages', () => {
  it('accepts real generated examples', async () => {
    const report = await validateDatasetFiles([fixture('valid.jsonl')])
    expect(report.ok).toBe(true)
    expect(report.problems).toEqual([])
    expect(report.summary.examples).toBe(3)
    expect(report.summary.byOutcome).toEqual({resolved: 1, escalated: 2})
  })

  it('invalid JSON: comments, blank lines, trailing commas, broken lines', async () => {
    expect(await messages('invalid-json.jsonl')).toEqual([
      'test/fixtures/dataset/invalid-json.jsonl:1:1: comment line (JSONL allows no comments) — remove it (--fix drops it)',
      'test/fixtures/dataset/invalid-json.jsonl:3:1: blank line (JSONL allows none) — remove it (--fix drops it)',
      'test/fixtures/dataset/invalid-json.jsonl:4:1530: trailing comma (JSON allows none before a closing bracket) — delete the comma (--fix repairs it)',
      'test/fixtures/dataset/invalid-json.jsonl:5:1552: comment after the JSON value (JSONL allows no comments) — remove it (--fix drops it)',
      'test/fixtures/dataset/invalid-json.jsonl:6:42: expected a double-quoted property name, found the end of the line — fix the JSON on this line',
    ])
    const report = await validateDatasetFiles([fixture('invalid-json.jsonl')])
    expect(textAt(report.problems[2], 2)).toBe(',}')
    expect(textAt(report.problems[3], 2)).toBe('//')
  })

  it('schema violations carry their JSON pointer and point at the value', async () => {
    expect(await messages('schema.jsonl')).toEqual([
      'test/fixtures/dataset/schema.jsonl:1:1: (root): missing required property "final"',
      'test/fixtures/dataset/schema.jsonl:2:1418: /meta/rule: "ledger_mismatchh" is not allowed — did you mean "ledger_mismatch"?',
      'test/fixtures/dataset/schema.jsonl:2:1418: /meta/rule: "ledger_mismatchh" but the finding\'s rule is "ledger_mismatch"',
      'test/fixtures/dataset/schema.jsonl:3:409: /trajectory/0: step has no observation (every step needs what the tool returned)',
      'test/fixtures/dataset/schema.jsonl:3:547: /trajectory/0: unknown property "observaton" — did you mean "observation"?',
      'test/fixtures/dataset/schema.jsonl:4:981: /trajectory/1/observation: an observation is {"ok": true, "result": …} or {"ok": false, "error": "…"}',
    ])
    const report = await validateDatasetFiles([fixture('schema.jsonl')])
    expect(report.problems.map((problem) => problem.pointer)).toEqual([
      '',
      '/meta/rule',
      '/meta/rule',
      '/trajectory/0',
      '/trajectory/0',
      '/trajectory/1/observation',
    ])
    expect(textAt(report.problems[1], 18)).toBe('"ledger_mismatchh"')
    expect(textAt(report.problems[4], 12)).toBe('"observaton"')
  })

  it('tools: unknown names with a suggestion, bad args, unterminated and misplaced terminal steps, outcome mismatch', async () => {
    expect(await messages('tools.jsonl')).toEqual([
      'test/fixtures/dataset/tools.jsonl:1:859: /trajectory/1/action/tool: unknown tool "recompute_onhand" — did you mean "recompute_on_hand"?',
      'test/fixtures/dataset/tools.jsonl:2:534: args of get_ledger_balance: /trajectory/0/action/args/part_id: must be string',
      'test/fixtures/dataset/tools.jsonl:3:859: /trajectory/1/action/tool: the trajectory ends with recompute_on_hand, not with resolve or escalate — add the terminal step (resolve after a validated fix, escalate otherwise)',
      'test/fixtures/dataset/tools.jsonl:4:810: /trajectory/1/action/tool: resolve ends a trajectory, but 2 step(s) follow it',
      'test/fixtures/dataset/tools.jsonl:5:965: args of recompute_on_hand: /trajectory/1/action/args: unknown property "idempotency" (allowed: part_id, reason)',
      'test/fixtures/dataset/tools.jsonl:6:1336: /final/outcome: "escalated" but the last step is resolve — expected "resolved"',
    ])
    const report = await validateDatasetFiles([fixture('tools.jsonl')])
    expect(textAt(report.problems[0], 18)).toBe('"recompute_onhand"')
    expect(textAt(report.problems[1], 2)).toBe('41')
    expect(textAt(report.problems[4], 13)).toBe('"idempotency"')
  })

  it('duplicate ids and duplicate contents name the first occurrence', async () => {
    expect(await messages('duplicates.jsonl')).toEqual([
      'test/fixtures/dataset/duplicates.jsonl:3:7: duplicate id "train-e8a801793cdb" (first on duplicates.jsonl:1) — ids must be unique',
      'test/fixtures/dataset/duplicates.jsonl:3:1: same content as duplicates.jsonl:1 (apart from the id) — drop the duplicate (--fix keeps the first)',
      'test/fixtures/dataset/duplicates.jsonl:4:1: same content as duplicates.jsonl:1 (apart from the id) — drop the duplicate (--fix keeps the first)',
    ])
  })

  it('PII in any field, without echoing it', async () => {
    expect(await messages('pii.jsonl')).toEqual([
      'test/fixtures/dataset/pii.jsonl:1:472: an email address in /trajectory/0/thought — scrub it: invagent dataset scrub FILE',
    ])
    const report = await validateDatasetFiles([fixture('pii.jsonl')])
    expect(textAt(report.problems[0], 11)).toBe('lead.stock@')
  })

  it('a stock delta such as (+215) in an observation is not a phone number', () => {
    const observation = 'T-0000431 posted (+215)'
    expect(findPii(observation)).toEqual([])
    expect(redactText(observation)).toBe(observation)
    expect(findPii('call +44 20 7946 0958 before posting').map((match) => match.kind)).toEqual(['phone'])
  })

  it('train/eval leakage with --eval', async () => {
    expect(await messages('leak-train.jsonl', {evalFiles: [fixture('leak-eval.jsonl')]})).toEqual([
      'test/fixtures/dataset/leak-train.jsonl:2:1: also in the eval set at leak-eval.jsonl:1 (same finding) — train/eval leakage; remove it from one of them',
    ])
    expect(await messages('leak-train.jsonl')).toEqual([])
  })

  it("the seeds' trajectory format: checked against its own tool declarations", async () => {
    expect(await messages('seeds-trajectory.jsonl')).toEqual([
      'test/fixtures/dataset/seeds-trajectory.jsonl:4:170: /trajectory/0: step has no observation (every step needs what the tool returned)',
      'test/fixtures/dataset/seeds-trajectory.jsonl:4:264: /trajectory/0/action/args: get_ledger_balance declares no argument "partid" — did you mean "part_id"?',
      'test/fixtures/dataset/seeds-trajectory.jsonl:4:344: /trajectory/1/action/tool: tool "adjust_quantity" is not declared in /tools (declared: get_ledger_balance)',
    ])
    const report = await validateDatasetFiles([fixture('seeds-trajectory.jsonl')])
    expect(report.summary.byFormat).toEqual({trajectory: 3})
  })

  it("the seeds' instruction format: calls written as text, checked against the one tool schema", async () => {
    expect(await messages('seeds-instruction.jsonl')).toEqual([
      'test/fixtures/dataset/seeds-instruction.jsonl:2:245: /output: args of adjust_quantity: missing required property "reason"',
      'test/fixtures/dataset/seeds-instruction.jsonl:2:245: /output: the trajectory ends with adjust_quantity, not with resolve or escalate — add the terminal step (resolve after a validated fix, escalate otherwise)',
      'test/fixtures/dataset/seeds-instruction.jsonl:3:262: /output: cannot parse the call to remap_transaction_part: expected a quoted string, a number, true/false or null, found "P-000001, re"',
      'test/fixtures/dataset/seeds-instruction.jsonl:3:118: /output: the trajectory ends with get_integration_events, not with resolve or escalate — add the terminal step (resolve after a validated fix, escalate otherwise)',
    ])
  })

  it('--fix drops what cannot be kept, repairs what can, converts foreign formats, and the result is clean', async () => {
    const directory = temporaryDirectory()
    const out = join(directory, 'fixed.jsonl')
    const report = await validateDatasetFiles([fixture('invalid-json.jsonl'), fixture('seeds-trajectory.jsonl')], {
      fix: out,
    })
    expect(report.ok).toBe(false)
    expect(report.fix!.written).toBe(4)
    expect(report.fix!.converted).toBe(1)
    expect(report.fix!.repaired.map((item) => `${item.line}: ${item.what}`)).toEqual([
      '4: trailing comma removed',
      '5: comment removed',
    ])
    expect(report.fix!.dropped.map((item) => `${item.file}:${item.line}`)).toEqual([
      'test/fixtures/dataset/invalid-json.jsonl:1',
      'test/fixtures/dataset/invalid-json.jsonl:3',
      'test/fixtures/dataset/invalid-json.jsonl:6',
      'test/fixtures/dataset/seeds-trajectory.jsonl:1',
      'test/fixtures/dataset/seeds-trajectory.jsonl:2',
      'test/fixtures/dataset/seeds-trajectory.jsonl:4',
    ])
    expect(report.fix!.dropped[3].reason).toMatch(/cannot convert from the trajectory format: names no rule/)
    const again = await validateDatasetFiles([out])
    expect(again.ok).toBe(true)
    expect(again.summary.byFormat).toEqual({playbook: 4})
  })

  it('a failing run leaves no half-written --fix file', async () => {
    const directory = temporaryDirectory()
    const out = join(directory, 'fixed.jsonl')
    await expect(
      validateDatasetFiles([fixture('valid.jsonl'), join(directory, 'missing.jsonl')], {fix: out}),
    ).rejects.toThrow(/does not exist/)
    expect(() => readFileSync(out)).toThrow()
  })

  it('reports the same with the line scan on a worker thread as inline, PII and duplicates included', async () => {
    const files = [
      'invalid-json.jsonl',
      'schema.jsonl',
      'tools.jsonl',
      'duplicates.jsonl',
      'pii.jsonl',
      'seeds-trajectory.jsonl',
      'valid.jsonl',
    ].map(fixture)
    const directory = temporaryDirectory()
    // The worker runs compiled code: the built module (npm test builds first) starts it from dist/.
    const built = (await import('../../dist/src/dataset/validate.js')) as typeof import('../../src/dataset/validate.js')
    const inline = await built.validateDatasetFiles(files, {worker: false, fix: join(directory, 'inline.jsonl')})
    const threaded = await built.validateDatasetFiles(files, {worker: true, fix: join(directory, 'threaded.jsonl')})
    expect(inline.problemCounts.pii).toBe(1)
    expect(inline.problemCounts['duplicate-content']).toBeGreaterThan(2)
    expect({...threaded, fix: undefined}).toEqual({...inline, fix: undefined})
    expect(readFileSync(join(directory, 'threaded.jsonl'), 'utf8')).toBe(
      readFileSync(join(directory, 'inline.jsonl'), 'utf8'),
    )
  })

  it('a name that opens a string is found (no pre-check skips it)', async () => {
    const directory = temporaryDirectory()
    const example = JSON.parse(readFileSync(resolve(ROOT, fixture('valid.jsonl')), 'utf8').split('\n')[0])
    example.instruction = 'Maria asked for a recount of P-000123.'
    writeFileSync(join(directory, 'name.jsonl'), JSON.stringify(example) + '\n')
    const report = await validateDatasetFiles([join(directory, 'name.jsonl')])
    expect(report.problems.map((problem) => `${problem.code} ${problem.pointer}`)).toEqual(['pii /instruction'])
  })
})
