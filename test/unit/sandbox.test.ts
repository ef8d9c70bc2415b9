import {afterEach, describe, expect, it} from 'vitest'

import {applyPlan} from '../../src/agent/apply.js'
import {fingerprintOf, readAgain} from '../../src/agent/plan.js'
import {SandboxInventory} from '../../src/agent/sandbox.js'
import {scopeOf} from '../../src/agent/scope.js'
import {ConfigError} from '../../src/errors.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {applyWrite} from '../../src/tools/write-tools.js'
import {buildInventory, caches, HOUR_MS, NOW, removeBuiltInventories, row} from '../helpers/inventory-builder.js'

afterEach(removeBuiltInventories)

function inventory(): SqliteInventory {
  return buildInventory()
    .part({id: 'P-000001', sku: 'BLT-10001', uom: 'EA', on_hand: 30})
    .conversion('P-000001', 'CS', 12)
    .part({id: 'P-000002', sku: 'NUT-20001', uom: 'EA', on_hand: 5})
    .transaction({id: 'T-0000001', part_id: 'P-000001', qty: 10, external_ref: 'ASN-1', created_at: NOW - 50 * HOUR_MS})
    .transaction({
      id: 'T-0000002',
      part_id: 'P-000001',
      qty: 2,
      uom: 'CS',
      status: 'pending',
      external_ref: 'ASN-2',
      created_at: NOW - 3 * HOUR_MS,
    })
    .transaction({id: 'T-0000003', part_id: 'P-000002', qty: 5, external_ref: 'ASN-3', created_at: NOW - 40 * HOUR_MS})
    .open()
}

const context = {runId: 'r', findingId: 'f', idempotencyKey: 'k-1'}

describe('the plan sandbox', () => {
  it('reads the live inventory, keeps its writes to itself, and later reads see them', async () => {
    const live = inventory()
    const sandbox = new SandboxInventory(live)
    try {
      expect((await sandbox.getPart('P-000001')).on_hand).toBe(30)
      const written = await applyWrite(
        sandbox,
        'reprocess_transaction',
        {txn_id: 'T-0000002', reason: 'retry'},
        context,
      )
      expect(written).toMatchObject({applied: true, on_hand: 54})
      expect((await sandbox.getTransaction('T-0000002')).status).toBe('posted')
      expect((await sandbox.getLedgerBalance('P-000001')).ledger_balance).toBe(34)
      // The live inventory has not changed by a row.
      expect(caches(live, 'P-000001')).toEqual({on_hand: 30, reserved: 0})
      expect(row<{status: string}>(live, 'SELECT status FROM transactions WHERE id = ?', 'T-0000002')!.status).toBe(
        'pending',
      )
      expect(row<{n: number}>(live, 'SELECT count(*) AS n FROM agent_actions')!.n).toBe(0)
    } finally {
      sandbox.close()
    }
  })

  it(
    'fingerprints what it read: the same data gives the same ' + 'digest, a change in a row read gives another',
    async () => {
      const live = inventory()
      const sandbox = new SandboxInventory(live)
      try {
        await sandbox.getLedgerBalance('P-000001')
        await sandbox.findPartsBySku('BLT-10001')
        const {reads, seen} = sandbox.reads()
        expect(reads.selection.ledgers).toEqual(['P-000001'])
        expect(fingerprintOf(await readAgain(live, reads))).toBe(fingerprintOf(seen))
        // A row the plan never read changes: the fingerprint holds.
        live.db.run(`UPDATE parts SET on_hand = 6 WHERE id = 'P-000002'`)
        expect(fingerprintOf(await readAgain(live, reads))).toBe(fingerprintOf(seen))
        // A new transaction on the part whose ledger it read: it does not.
        live.db.run(
          `INSERT INTO transactions (id, part_id, sku, kind, qty, uom, status, source, external_ref, ` +
            `created_at, posted_at) VALUES ('T-0000009', 'P-000001', 'BLT-10001', 'receipt', 1, 'EA', ` +
            `'posted', 'wms', 'ASN-9', 1, 1)`,
        )
        expect(fingerprintOf(await readAgain(live, reads))).not.toBe(fingerprintOf(seen))
      } finally {
        sandbox.close()
      }
    },
  )

  it('starts empty again after reset, with the live clock', async () => {
    const live = inventory()
    const sandbox = new SandboxInventory(live)
    try {
      await applyWrite(sandbox, 'reprocess_transaction', {txn_id: 'T-0000002', reason: 'retry'}, context)
      sandbox.reset()
      expect((await sandbox.getTransaction('T-0000002')).status).toBe('pending')
      expect(sandbox.reads().reads.selection.transactions).toEqual(['T-0000002'])
      expect(sandbox.clock()).toBe(live.clock())
    } finally {
      sandbox.close()
    }
  })

  it('computes the same scope through the sandbox as on the live inventory', async () => {
    const live = inventory()
    const sandbox = new SandboxInventory(live)
    try {
      const [finding] = await live.detect(['stuck_pending'])
      expect(await scopeOf(sandbox, finding)).toEqual(await scopeOf(live, finding))
    } finally {
      sandbox.close()
    }
  })
})

describe('applying a plan', () => {
  it('refuses an inventory opened read-only before anything is written', async () => {
    const writable = inventory()
    const readOnly = SqliteInventory.open(writable.location, {readOnly: true})
    try {
      await expect(readOnly.assertWritable()).rejects.toBeInstanceOf(ConfigError)
      await expect(writable.assertWritable()).resolves.toBeUndefined()
      expect(row<{n: number}>(writable, `SELECT count(*) AS n FROM invagent_meta WHERE key = 'write_probe'`)!.n).toBe(0)
    } finally {
      readOnly.close()
    }
  })

  it('reports a plan whose every write is recorded as already applied, and applies nothing', async () => {
    const live = inventory()
    const plan = {
      runId: 'r',
      findingId: 'f',
      writes: [
        {
          tool: 'recompute_on_hand',
          args: {part_id: 'P-000001', reason: 'r'},
          impact: {partId: 'P-000001', onHandDelta: -20, reservedDelta: 0},
          idempotencyKey: 'k-applied',
        },
      ],
    }
    await applyWrite(
      live,
      'recompute_on_hand',
      {part_id: 'P-000001', reason: 'r'},
      {runId: 'r', findingId: 'f', idempotencyKey: 'k-applied'},
    )
    const before = caches(live, 'P-000001')
    const result = await applyPlan(live, plan as never)
    expect(result).toMatchObject({status: 'already_applied', writesApplied: 0})
    expect(caches(live, 'P-000001')).toEqual(before)
  })
})
