import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {describe, expect, it} from 'vitest'

import {DetectOutput, InventoryInitOutput, ToolsOutput} from '../../src/cli/output-schemas.js'
import {ROOT_CAUSES} from '../../src/tools/catalogue.js'
import {runCli, sha256OfFile, temporaryDirectory} from '../helpers/cli.js'

describe('invagent inventory init', () => {
  it('injects every rule and root cause, writes the ground truth, and is deterministic for a seed', async () => {
    const cwd = temporaryDirectory()
    const a = await runCli(
      [
        'inventory',
        'init',
        '--db',
        join(cwd, 'a.db'),
        '--parts',
        '120',
        '--days',
        '20',
        '--faults',
        '26',
        '--seed',
        '9',
        '--json',
      ],
      cwd,
    )
    expect(a.exitCode).toBe(0)
    const result = InventoryInitOutput.parse(a.json)
    expect(result.parts).toBe(120)
    expect(result.transactions).toBeGreaterThan(120 * 3)
    const covered = new Set(result.faults.map((fault) => `${fault.rule}/${fault.rootCause}`))
    expect([...covered].sort()).toEqual(ROOT_CAUSES.map((entry) => `${entry.rule}/${entry.rootCause}`).sort())
    expect(result.faults.filter((fault) => fault.expected === 'escalate').length).toBe(
      ROOT_CAUSES.filter((entry) => entry.expected === 'escalate').length,
    )
    const truth = JSON.parse(readFileSync(join(cwd, 'a.db.faults.json'), 'utf8'))
    expect(truth.faults).toEqual(result.faults)
    const b = await runCli(
      [
        'inventory',
        'init',
        '--db',
        join(cwd, 'b.db'),
        '--parts',
        '120',
        '--days',
        '20',
        '--faults',
        '26',
        '--seed',
        '9',
        '--json',
      ],
      cwd,
    )
    expect(InventoryInitOutput.parse(b.json).faults).toEqual(result.faults)
    const dump = (path: string) =>
      new DatabaseSync(path, {readOnly: true}).prepare('SELECT * FROM transactions ORDER BY id').all()
    expect(dump(join(cwd, 'b.db'))).toEqual(dump(join(cwd, 'a.db')))
  })

  it('refuses to overwrite without --force, and replaces with it', async () => {
    const cwd = temporaryDirectory()
    const db = join(cwd, 'inv.db')
    await runCli(['inventory', 'init', '--db', db, '--seed', '1'], cwd)
    const before = sha256OfFile(db)
    const refused = await runCli(['inventory', 'init', '--db', db, '--seed', '2'], cwd)
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toContain('already exists')
    expect(refused.stderr).toContain('--force')
    expect(sha256OfFile(db)).toBe(before)
    expect((await runCli(['inventory', 'init', '--db', db, '--seed', '2', '--force'], cwd)).exitCode).toBe(0)
    expect(sha256OfFile(db)).not.toBe(before)
  })

  it('says how many faults are possible when --faults is too large', async () => {
    const cwd = temporaryDirectory()
    const result = await runCli(['inventory', 'init', '--db', join(cwd, 'x.db'), '--parts', '10', '--faults', '6'], cwd)
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toContain('at most 5')
    expect(existsSync(join(cwd, 'x.db'))).toBe(false)
  })

  it('reports a path it cannot write with exit code 3 and leaves nothing behind', async () => {
    const cwd = temporaryDirectory()
    writeFileSync(join(cwd, 'file'), 'not a folder')
    const result = await runCli(['inventory', 'init', '--db', join(cwd, 'file', 'inv.db')], cwd)
    expect(result.exitCode).toBe(3)
    expect(result.stderr).toContain('cannot write to')
  })
})

describe('invagent detect', () => {
  it('finds every injected fault, and nothing on a clean inventory', async () => {
    const cwd = temporaryDirectory()
    const faulty = InventoryInitOutput.parse(
      (await runCli(['inventory', 'init', '--db', join(cwd, 'f.db'), '--seed', '4', '--json'], cwd)).json,
    )
    const found = DetectOutput.parse((await runCli(['detect', '--db', join(cwd, 'f.db'), '--json'], cwd)).json).findings
    const ids = new Set(found.map((finding) => finding.id))
    for (const fault of faulty.faults)
      expect(ids.has(`${fault.rule}:${fault.entity}`), `${fault.id} ${fault.rule}/${fault.rootCause}`).toBe(true)
    const expected = new Set(
      faulty.faults.flatMap((fault) => [
        `${fault.rule}:${fault.entity}`,
        ...fault.alsoDetected.map((also) => `${also.rule}:${also.entity}`),
      ]),
    )
    expect(found.filter((finding) => !expected.has(finding.id))).toEqual([])

    await runCli(['inventory', 'init', '--db', join(cwd, 'clean.db'), '--faults', '0', '--seed', '4'], cwd)
    const clean = await runCli(['detect', '--db', join(cwd, 'clean.db'), '--json'], cwd)
    expect(clean.json).toEqual({findings: []})
    expect((await runCli(['detect', '--db', join(cwd, 'clean.db')], cwd)).stdout).toContain('No findings')
  })

  it('filters by rule', async () => {
    const cwd = temporaryDirectory()
    await runCli(['inventory', 'init', '--db', join(cwd, 'f.db'), '--seed', '4'], cwd)
    const result = DetectOutput.parse(
      (await runCli(['detect', '--db', join(cwd, 'f.db'), '--rule', 'sync_error', '--json'], cwd)).json,
    )
    expect(result.findings.length).toBeGreaterThan(0)
    expect(new Set(result.findings.map((finding) => finding.rule))).toEqual(new Set(['sync_error']))
  })

  it('rejects a corrupt file and a database of another schema with exit code 3', async () => {
    const cwd = temporaryDirectory()
    writeFileSync(join(cwd, 'corrupt.db'), 'this is not sqlite')
    const corrupt = await runCli(['detect', '--db', join(cwd, 'corrupt.db')], cwd)
    expect(corrupt.exitCode).toBe(3)
    expect(corrupt.stderr).toContain('is not a SQLite database')
    const foreign = new DatabaseSync(join(cwd, 'foreign.db'))
    foreign.exec('CREATE TABLE parts (id TEXT PRIMARY KEY, name TEXT)')
    foreign.close()
    const before = sha256OfFile(join(cwd, 'foreign.db'))
    const result = await runCli(['audit', '--db', join(cwd, 'foreign.db')], cwd)
    expect(result.exitCode).toBe(3)
    expect(result.stderr).toContain('is not an invagent inventory')
    expect(result.stderr).toContain('table transactions is missing')
    expect(sha256OfFile(join(cwd, 'foreign.db'))).toBe(before)
  })
})

describe('invagent tools', () => {
  it('publishes the catalogue with JSON Schemas', async () => {
    const cwd = temporaryDirectory()
    const result = ToolsOutput.parse((await runCli(['tools', '--json'], cwd)).json)
    expect(result.tools.map((tool) => tool.name)).toContain('reprocess_transaction')
    expect(result.tools.find((tool) => tool.name === 'adjust_quantity')!.args).toMatchObject({
      type: 'object',
      required: ['part_id', 'delta', 'reason'],
      additionalProperties: false,
    })
    expect((await runCli(['tools'], cwd)).stdout).toMatch(/get_part\s+read\s+part_id/)
  })
})

describe('invagent log verify', () => {
  it('reports the first broken line and exits 1', async () => {
    const cwd = temporaryDirectory()
    await runCli(['audit', '--dry-run'], cwd)
    const ok = await runCli(['log', 'verify', '--json'], cwd)
    expect(ok.exitCode).toBe(0)
    const file = ok.json.files[0].file as string
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
    lines.splice(4, 1)
    writeFileSync(file, lines.join('\n') + '\n')
    const broken = await runCli(['log', 'verify', file], cwd)
    expect(broken.exitCode).toBe(1)
    expect(broken.stdout).toContain(`${file}:5: sequence number 6 where 5 was expected`)
  })

  it('says what to do when there are no logs', async () => {
    const cwd = temporaryDirectory()
    const result = await runCli(['log', 'verify'], cwd)
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toContain('Run `invagent audit` first')
  })
})

describe('invagent inventory indexes', () => {
  it('makes a reference-schema database built elsewhere usable, adding indexes only', async () => {
    const {SCHEMA_SQL} = await import('../../src/inventory/schema.js')
    const cwd = temporaryDirectory()
    const path = join(cwd, 'external.db')
    const external = new DatabaseSync(path)
    external.exec(SCHEMA_SQL)
    external.exec(
      `INSERT INTO parts (id, sku, name, uom, on_hand, reserved, location, updated_at) VALUES ('P-1', 'A-1', 'Widget', 'EA', -3, 0, 'A', 0)`,
    )
    external.close()

    const refused = await runCli(['detect', '--db', path, '--json'], cwd)
    expect(refused.exitCode).toBe(3)
    expect(refused.json.error.message).toContain('lacks the indexes detection relies on')
    expect(refused.json.error.suggestions[0]).toContain(`invagent inventory indexes --db ${path}`)

    const indexed = await runCli(['inventory', 'indexes', '--db', path, '--json'], cwd)
    expect(indexed.exitCode).toBe(0)
    expect(indexed.json.created).toContain('idx_transactions_ledger')
    const findings = DetectOutput.parse((await runCli(['detect', '--db', path, '--json'], cwd)).json).findings
    // on_hand -3 with an empty ledger: negative, and a cache that disagrees with its ledger.
    expect(findings.map((finding) => finding.id)).toEqual(['negative_on_hand:P-1', 'ledger_mismatch:P-1'])
    expect((await runCli(['inventory', 'indexes', '--db', path, '--json'], cwd)).json.created).toEqual([])
  })
})
