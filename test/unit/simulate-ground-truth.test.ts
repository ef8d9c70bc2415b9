import {join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {describe, expect, it} from 'vitest'

import {classifyMessage, unitEvidence} from '../../src/engines/message-classifier.js'
import {initInventory} from '../../src/simulate/generate.js'
import {HOSTILE_TEXTS} from '../../src/simulate/hostile-text.js'
import {ROOT_CAUSES} from '../../src/tools/catalogue.js'
import {getTool} from '../../src/tools/tools.js'
import {temporaryDirectory} from '../helpers/cli.js'

describe('ground truth of injected faults', () => {
  const init = initInventory({
    path: join(temporaryDirectory(), 'inv.db'),
    parts: 60,
    days: 10,
    faults: 26,
    seed: 31,
    variants: ROOT_CAUSES,
  })

  it('injects exactly the variants asked for, in order', () => {
    expect(init.faults.map((fault) => `${fault.rule}/${fault.rootCause}`)).toEqual(
      ROOT_CAUSES.map((cause) => `${cause.rule}/${cause.rootCause}`),
    )
    expect(() =>
      initInventory({
        path: join(temporaryDirectory(), 'x.db'),
        parts: 10,
        days: 5,
        faults: 2,
        seed: 1,
        variants: ROOT_CAUSES.slice(0, 1),
      }),
    ).toThrow(/1 fault variants were given for 2 faults/)
  })

  it('records a gold fix of valid write calls for every fault to fix, and none for one to escalate', () => {
    const db = new DatabaseSync(init.db, {readOnly: true})
    const partOf = (txnId: string) =>
      (db.prepare('SELECT part_id FROM transactions WHERE id = ?').get(txnId) as {part_id: string | null}).part_id
    const partOfReservation = (id: string) =>
      (db.prepare('SELECT part_id FROM reservations WHERE id = ?').get(id) as {part_id: string}).part_id
    for (const fault of init.faults) {
      expect(fault.part, fault.id).toMatch(/^P-\d{6}$/)
      if (fault.expected === 'escalate') {
        expect(fault.goldFix, `${fault.rule}/${fault.rootCause}`).toEqual([])
        continue
      }
      expect(fault.goldFix!.length, `${fault.rule}/${fault.rootCause}`).toBeGreaterThan(0)
      for (const call of fault.goldFix!) {
        const tool = getTool(call.tool)
        expect(tool?.effect, call.tool).toBe('write')
        expect(tool!.args.safeParse(call.args).success, `${call.tool} ${JSON.stringify(call.args)}`).toBe(true)
        // A gold write touches the fault's own entities only: its transaction, or its part and what belongs to it.
        const args = call.args as {txn_id?: string; part_id?: string; reservation_id?: string}
        if (args.txn_id !== undefined && args.txn_id !== fault.entity)
          expect(partOf(args.txn_id), `${call.tool} ${args.txn_id}`).toBe(fault.part)
        if (args.part_id !== undefined) expect(args.part_id).toBe(fault.part)
        if (args.reservation_id !== undefined) expect(partOfReservation(args.reservation_id)).toBe(fault.part)
      }
    }
    db.close()
  })
})

describe('hostile text', () => {
  it('never reads as a real integration failure, a count or an invoice', () => {
    for (const text of HOSTILE_TEXTS) {
      expect(classifyMessage(text, 'info'), text).toBe('info')
      expect(unitEvidence(text), text).toBeUndefined()
    }
  })

  it("changes only the faults' part names and adds one message per fault transaction", () => {
    const directory = temporaryDirectory()
    const options = {
      parts: 30,
      days: 10,
      faults: 3,
      seed: 8,
      variants: [ROOT_CAUSES[14], ROOT_CAUSES[4], ROOT_CAUSES[6]],
    }
    const plain = initInventory({...options, path: join(directory, 'plain.db')})
    const hostile = initInventory({...options, path: join(directory, 'hostile.db'), hostileText: true})
    expect(hostile.faults).toEqual(plain.faults)
    const read = (path: string) => {
      const db = new DatabaseSync(path, {readOnly: true})
      const names = db.prepare('SELECT id, name FROM parts ORDER BY id').all() as Array<{id: string; name: string}>
      const events = db.prepare('SELECT txn_id, message FROM integration_events ORDER BY id').all() as Array<{
        txn_id: string
        message: string
      }>
      const transactions = db.prepare('SELECT * FROM transactions ORDER BY id').all()
      db.close()
      return {names, events, transactions}
    }
    const a = read(plain.db)
    const b = read(hostile.db)
    expect(b.transactions).toEqual(a.transactions)
    const renamed = b.names.filter((part, index) => part.name !== a.names[index].name).map((part) => part.id)
    expect(renamed.sort()).toEqual(hostile.faults.map((fault) => fault.part).sort())
    for (const part of b.names.filter((candidate) => renamed.includes(candidate.id)))
      expect(HOSTILE_TEXTS.some((text) => part.name.includes(text.slice(0, 20)))).toBe(true)
    expect(b.events.slice(0, a.events.length)).toEqual(a.events)
    expect(b.events.slice(a.events.length)).toHaveLength(3)
  })
})
