import {copyFileSync} from 'node:fs'
import {join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {describe, expect, it} from 'vitest'

import {diffStates, formatDifference, readState, SET_TIMESTAMP} from '../../src/eval/state.js'
import {initInventory} from '../../src/simulate/generate.js'
import {temporaryDirectory} from '../helpers/cli.js'

describe('normalized inventory state', () => {
  const directory = temporaryDirectory()
  const original = initInventory({path: join(directory, 'a.db'), parts: 12, days: 5, faults: 2, seed: 9}).db

  function copy(name: string, sql: string): string {
    const path = join(directory, name)
    copyFileSync(original, path)
    const db = new DatabaseSync(path)
    db.exec(sql)
    db.close()
    return path
  }

  it('leaves out agent bookkeeping and the time of writes', () => {
    const touched = copy(
      'touched.db',
      `
      INSERT INTO agent_actions (idempotency_key, run_id, finding_id, tool, args, result, at) VALUES ('k', 'r', 'f', 't', '{}', '{}', 1);
      UPDATE invagent_meta SET value = 'other' WHERE key = 'generator';
      UPDATE parts SET updated_at = updated_at + 12345;
      UPDATE transactions SET posted_at = posted_at + 999 WHERE posted_at IS NOT NULL;`,
    )
    expect(diffStates(readState(original), readState(touched))).toEqual([])
  })

  it('compares posted_at as set or not, and every other column by value', () => {
    const state = readState(original)
    const posted = [...state.values()].find((row) => row.status === 'posted')!
    expect(posted.posted_at).toBe(SET_TIMESTAMP)
    const changed = copy(
      'changed.db',
      `
      UPDATE transactions SET posted_at = NULL, status = 'pending' WHERE id = '${String(posted.id)}';
      UPDATE parts SET on_hand = on_hand + 7 WHERE id = 'P-000003';
      DELETE FROM sku_aliases;
      INSERT INTO sku_aliases (alias, part_id) VALUES ('NEW-ALIAS', 'P-000001');
      UPDATE integration_events SET message = 'edited' WHERE id = 1;`,
    )
    const differences = diffStates(state, readState(changed))
    const lines = differences.map(formatDifference)
    expect(lines).toContain(
      `~ transactions ${String(posted.id)}: status expected "posted", found "pending"; posted_at expected "${SET_TIMESTAMP}", found null`,
    )
    expect(lines.find((line) => line.startsWith('~ parts P-000003'))).toMatch(
      /^~ parts P-000003: on_hand expected (-?\d+), found (-?\d+)$/,
    )
    expect(lines).toContain('+ sku_aliases NEW-ALIAS: unexpected row {"alias":"NEW-ALIAS","part_id":"P-000001"}')
    expect(lines.find((line) => line.startsWith('~ integration_events 1:'))).toContain('found "edited"')
    const before = new DatabaseSync(original, {readOnly: true})
    const aliases = (before.prepare('SELECT count(*) AS n FROM sku_aliases').get() as {n: number}).n
    before.close()
    expect(
      differences.filter((difference) => difference.change === 'missing' && difference.table === 'sku_aliases'),
    ).toHaveLength(aliases)
  })
})
