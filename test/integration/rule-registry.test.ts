import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {Finding} from '../../src/detect/finding.js'
import {REGISTRY} from '../../src/detect/registry.js'
import {RULE_INFO} from '../../src/detect/rules.js'
import {POSTGRES_SCANS, SQLITE_SCANS} from '../../src/detect/scans.js'
import type {InventoryBackend} from '../../src/inventory/backend.js'
import {PostgresInventory} from '../../src/inventory/postgres/backend.js'
import {initPostgresInventory} from '../../src/inventory/postgres/init.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {initInventory} from '../../src/simulate/generate.js'
import {ROOT_CAUSES, RULES} from '../../src/tools/catalogue.js'
import {createTestDatabase, postgresUnavailable} from '../helpers/postgres.js'

/*
 * The contract of the rule registry (docs/architecture.md, "Rules"): every entry answers its rule on both
 * dialects, whole-inventory and scoped, and the catalogue is made from it. Whole-inventory agreement between
 * the backends is the conformance suite's (conformance.test.ts); here each rule is checked on its own.
 */

// Every root cause injected at least once, so that every rule fires.
const INVENTORY = {parts: 300, days: 20, faults: 2 * ROOT_CAUSES.length, seed: 11}

const pgSkip = await postgresUnavailable()
if (pgSkip) console.warn(`SKIPPING the PostgreSQL registry checks: ${pgSkip}`)

describe('rule registry entries', () => {
  it('make RULES, ROOT_CAUSES and RULE_INFO, in the registry order', () => {
    expect([...RULES]).toEqual(REGISTRY.map((rule) => rule.name))
    expect(ROOT_CAUSES.map((entry) => `${entry.rule}/${entry.rootCause}`)).toEqual(
      REGISTRY.flatMap((rule) => rule.rootCauses.map((cause) => `${rule.name}/${cause.rootCause}`)),
    )
    for (const rule of REGISTRY) {
      expect(RULE_INFO[rule.name]).toEqual({name: rule.name, entity: rule.entity, description: rule.description})
      expect(rule.rootCauses.length).toBeGreaterThan(0)
      expect(rule.rootCauses.some((cause) => cause.expected === 'escalate')).toBe(true)
    }
    expect(new Set(RULES).size).toBe(RULES.length)
  })

  for (const rule of REGISTRY) {
    it(`${rule.name} has SQL and a mapping for both dialects`, () => {
      for (const [dialect, scans] of [
        ['sqlite', SQLITE_SCANS],
        ['postgres', POSTGRES_SCANS],
      ] as const) {
        const {whole, scoped} = rule[dialect]
        const sql = 'scan' in whole.from ? (scans as Record<string, string>)[whole.from.scan] : whole.from.sql
        expect(sql, `${dialect} whole-inventory SQL`).toMatch(/\bSELECT\b/)
        expect(whole.finding !== undefined || (whole.then ?? []).length > 0, `${dialect} whole mapping`).toBe(true)
        for (const followUp of [...(whole.then ?? []), ...(scoped.then ?? [])])
          expect(followUp.sql).toMatch(/\bSELECT\b/)
        expect(scoped.of, `${dialect} scoped scan`).toBe(rule.entity)
        expect(scoped.finding !== undefined || (scoped.then ?? []).length > 0, `${dialect} scoped mapping`).toBe(true)
      }
    })
  }
})

interface Opened {
  backend: InventoryBackend
  close(): Promise<void>
}

const directories: string[] = []
afterAll(() => {
  for (const dir of directories) rmSync(dir, {recursive: true, force: true})
})

const SUBJECTS: Array<{name: string; skip?: string; open(): Promise<Opened>}> = [
  {
    name: 'SQLite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'invagent-registry-'))
      directories.push(dir)
      const backend = SqliteInventory.open(initInventory({...INVENTORY, path: join(dir, 'inventory.db')}).db, {
        readOnly: true,
      })
      return {backend, close: async () => backend.close()}
    },
  },
  {
    name: 'PostgreSQL',
    skip: pgSkip,
    async open() {
      const database = await createTestDatabase('registry')
      await initPostgresInventory({...INVENTORY, url: database.url})
      // 'always': the queries marked secondConnection run on the helper connection, as on a large ledger.
      const backend = await PostgresInventory.open(database.url, {concurrentDetection: 'always'})
      return {
        backend,
        async close() {
          await backend.close()
          await database.drop()
        },
      }
    },
  },
]

for (const subject of SUBJECTS) {
  describe.skipIf(subject.skip !== undefined)(`rule registry on ${subject.name}`, () => {
    let opened: Opened
    let all: Finding[]
    beforeAll(async () => {
      opened = await subject.open()
      all = await opened.backend.detect()
    }, 120_000)
    afterAll(async () => opened?.close())

    it('finds something for every rule of the generated inventory', () => {
      expect(new Set(all.map((finding) => finding.rule))).toEqual(new Set(RULES))
    })

    it('finds the same for one rule asked alone as for that rule among all', async () => {
      for (const rule of RULES) {
        expect(await opened.backend.detect([rule]), rule).toEqual(all.filter((finding) => finding.rule === rule))
      }
    })

    it("answers each finding again from the scoped query over the finding's entity", async () => {
      for (const finding of all) {
        const part = RULE_INFO[finding.rule].entity === 'part'
        const scoped = await opened.backend.detectInScope({
          partIds: new Set(part ? [finding.entity] : []),
          txnIds: new Set(part ? [] : [finding.entity]),
        })
        expect(scoped, finding.id).toContainEqual(finding)
        // Nothing the whole-inventory pass did not find either.
        for (const other of scoped) expect(all, `${finding.id}: ${other.id}`).toContainEqual(other)
      }
    })

    it('answers all the findings at once from the scoped queries over all their entities', async () => {
      const scoped = await opened.backend.detectInScope({
        partIds: new Set(all.filter((finding) => RULE_INFO[finding.rule].entity === 'part').map((f) => f.entity)),
        txnIds: new Set(all.filter((finding) => RULE_INFO[finding.rule].entity !== 'part').map((f) => f.entity)),
      })
      expect(scoped).toEqual(all)
    })
  })
}
