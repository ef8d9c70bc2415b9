import {join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {beforeAll, describe, expect, it} from 'vitest'

import {escapeOutput, escapeValue} from '../../src/cli/terminal-text.js'
import type {AuditReport} from '../../src/agent/audit.js'
import {renderAuditReport} from '../../src/cli/render.js'
import {renderTable} from '../../src/cli/table.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

/** Clears the screen, returns the cursor and forges a table row of its own. */
const HOSTILE_SKU = 'FAS-1\x1b[2J\x1b[H\r\nnegative_on_hand  P-999999  high  all_clear=yes\u202e'

describe('a SKU with control characters cleared the screen and forged a table row in detect and audit', () => {
  let cwd: string
  let db: string

  beforeAll(async () => {
    cwd = temporaryDirectory()
    db = join(cwd, 'inv.db')
    expect((await runCli(['inventory', 'init', '--db', db, '--seed', '5'], cwd)).exitCode).toBe(0)
    const database = new DatabaseSync(db)
    // Orphan transactions show their SKU (as received) in the evidence and the audit's actions.
    database
      .prepare('UPDATE transactions SET sku = ? WHERE part_id IS NULL OR part_id NOT IN (SELECT id FROM parts)')
      .run(HOSTILE_SKU)
    database.close()
  })

  it.each([[['detect', '--db']], [['audit', '--dry-run', '--db']]])(
    '%j writes no control character and no extra row',
    async (args) => {
      const run = await runCli([...args, db], cwd)
      expect(run.exitCode).toBe(0)
      if (args[0] === 'detect') expect(run.stdout).toContain(String.raw`FAS-1\x1b[2J\x1b[H\r\nnegative_on_hand`)
      expect(run.stdout + run.stderr).not.toMatch(/[\x00-\x09\x0B-\x1F\x7F-\x9F\u202E]/)
      expect(run.stdout.split('\n').filter((line) => line.startsWith('negative_on_hand  P-999999'))).toEqual([])
    },
  )

  it('still gives --json the exact text (JSON escapes it)', async () => {
    const run = await runCli(['detect', '--db', db, '--json'], cwd)
    expect(JSON.stringify(run.json)).toContain(JSON.stringify(HOSTILE_SKU).slice(1, -1))
  })

  it('escapes the arguments of planned actions in the audit table', () => {
    const outcome = {
      findingId: 'orphan_transaction:T-1',
      rule: 'orphan_transaction',
      entity: 'T-1',
      rootCause: 'sku_alias',
      outcome: 'escalated',
      actions: [{tool: 'find_part_by_sku', args: {sku: HOSTILE_SKU}, applied: false}],
    }
    const report = {
      runId: 'r',
      dryRun: true,
      engine: 'rules',
      db: 'inv.db',
      logFile: 'log.jsonl',
      findingsDetected: 1,
      outcomes: [outcome],
      summary: {resolved: 0, wouldResolve: 0, escalated: 1, failed: 0},
    }
    const text = renderAuditReport(report as unknown as AuditReport)
    expect(text).not.toMatch(/[\x00-\x09\x0B-\x1F\x7F-\x9F\u202E]/)
    expect(text.split('\n').filter((line) => line.startsWith('negative_on_hand'))).toEqual([])
  })

  it('escapes a cell but keeps the lines of a table', () => {
    const table = renderTable(['sku'], [[HOSTILE_SKU], ['ok']])
    expect(table.split('\n')).toHaveLength(4)
    expect(escapeValue('a\tb\nc\x07')).toBe(String.raw`a\tb\nc\x07`)
    expect(escapeOutput('line one\x1b[31m\nline two\r')).toBe(
      String.raw`line one\x1b[31m` + '\n' + String.raw`line two\r`,
    )
  })
})
