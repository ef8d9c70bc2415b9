import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import fc from 'fast-check'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {SandboxInventory} from '../../src/agent/sandbox.js'
import {scopeOf} from '../../src/agent/scope.js'
import type {Finding} from '../../src/detect/finding.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {initInventory} from '../../src/simulate/generate.js'

/*
 * The sandbox answers scoped detection by running every rule over the little it holds and keeping
 * the scope's findings (docs/architecture.md, "The sandbox"); the live inventory answers it rule by
 * rule for the named entities. Before any write both must give exactly the same findings.
 */

let directory: string
let live: SqliteInventory
let sandbox: SandboxInventory
let findings: Finding[]
let partIds: string[]
let txnIds: string[]

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'invagent-scoped-'))
  const path = initInventory({path: join(directory, 'inv.db'), parts: 120, days: 20, faults: 40, seed: 11}).db
  live = SqliteInventory.open(path, {readOnly: true})
  sandbox = new SandboxInventory(live)
  findings = await live.detect()
  partIds = live.db.all<{id: string}>('SELECT id FROM parts ORDER BY id').map((row) => row.id)
  txnIds = live.db.all<{id: string}>('SELECT id FROM transactions ORDER BY id').map((row) => row.id)
})

afterAll(() => {
  sandbox.close()
  live.close()
  rmSync(directory, {recursive: true, force: true})
})

const ids = (list: Finding[]) => list.map((finding) => `${finding.id} ${JSON.stringify(finding.evidence)}`)

describe('scoped detection in the sandbox', () => {
  it('gives the live inventory’s findings for the scope of every finding', async () => {
    expect(findings.length).toBeGreaterThan(30)
    const rules = new Set(findings.map((finding) => finding.rule))
    expect(rules.size).toBeGreaterThanOrEqual(7)
    for (const finding of findings) {
      sandbox.reset()
      const scope = await scopeOf(sandbox, finding)
      const inSandbox = await sandbox.detectInScope(scope)
      expect(ids(inSandbox), finding.id).toEqual(ids(await live.detectInScope(scope)))
      expect(inSandbox.map((current) => current.id)).toContain(finding.id)
    }
  })

  it('gives the live inventory’s findings for any set of parts and transactions', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.constantFrom(...partIds), {maxLength: 4}),
        fc.uniqueArray(fc.constantFrom(...txnIds), {maxLength: 12}),
        async (parts, txns) => {
          sandbox.reset()
          const entities = {partIds: new Set(parts), txnIds: new Set(txns)}
          expect(ids(await sandbox.detectInScope(entities))).toEqual(ids(await live.detectInScope(entities)))
        },
      ),
      {numRuns: 150, seed: 7},
    )
  })

  it('judges transactions of the faults’ parts too, whether or not they are findings', async () => {
    const faulty = [...new Set(findings.map((finding) => finding.entity))]
    const txns = live.db
      .all<{id: string}>(
        `SELECT id FROM transactions WHERE part_id IN (SELECT value FROM json_each(?)) OR id IN ` +
          '(SELECT value FROM json_each(?)) ORDER BY id',
        JSON.stringify(faulty),
        JSON.stringify(faulty),
      )
      .map((row) => row.id)
    sandbox.reset()
    const entities = {partIds: new Set(faulty.filter((id) => id.startsWith('P-'))), txnIds: new Set(txns)}
    const inSandbox = await sandbox.detectInScope(entities)
    expect(ids(inSandbox)).toEqual(ids(await live.detectInScope(entities)))
    expect(inSandbox.length).toBeGreaterThan(30)
  })
})
