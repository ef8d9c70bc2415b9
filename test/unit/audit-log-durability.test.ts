import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterEach, describe, expect, it, vi} from 'vitest'

import {AuditLog, verifyLogFile} from '../../src/agent/audit-log.js'
import {runAudit} from '../../src/agent/audit.js'
import {RulesEngine} from '../../src/engines/rules-engine.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {initInventory} from '../../src/simulate/generate.js'
import {SqliteStateStore} from '../../src/state/sqlite-state.js'
import {temporaryDirectory} from '../helpers/cli.js'

/*
 * The audit log keeps lines in memory between flushes (docs/architecture.md, "The audit loop",
 * Report). What it must never do: lose a line a failed write did not write, break the chain
 * when a later write succeeds, keep a line in memory long while a model thinks, or let a plan be
 * parked or asked about before the lines that made it are on disk.
 */

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>()
  return {...actual, writeSync: vi.fn(actual.writeSync)}
})

const {writeSync} = await import('node:fs')
const mockedWrite = vi.mocked(writeSync)
const realWriteSync = (await vi.importActual<typeof import('node:fs')>('node:fs')).writeSync

afterEach(() => {
  mockedWrite.mockReset()
  mockedWrite.mockImplementation(realWriteSync as typeof writeSync)
})

const lines = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n').filter(Boolean)

describe('the audit log when a write fails', () => {
  it('keeps what was not written, and writes it first, in order, when the disk has room again', () => {
    const log = AuditLog.create(temporaryDirectory(), 'full0001')
    log.append('run-started', {engine: 'rules'})
    log.append('finding-detected', {id: 'negative_on_hand:P-000001'})
    // The disk takes 40 bytes of the first write, then is full.
    mockedWrite
      .mockImplementationOnce((fd: number, buffer: NodeJS.ArrayBufferView, offset?: number | null) =>
        realWriteSync(fd, buffer as Buffer, offset ?? 0, 40),
      )
      .mockImplementationOnce(() => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {code: 'ENOSPC'})
      })
    expect(() => log.flush()).toThrow(/ENOSPC/)
    expect(readFileSync(log.file, 'utf8')).toHaveLength(40)
    log.append('outcome-recorded', {findingId: 'negative_on_hand:P-000001', outcome: 'would_resolve'})
    log.append('run-finished', {})
    log.close()
    expect(lines(log.file)).toHaveLength(4)
    expect(verifyLogFile(log.file)).toMatchObject({ok: true, lines: 4})
  })

  it('closes the file even when the last flush fails', () => {
    const log = AuditLog.create(temporaryDirectory(), 'full0002')
    log.append('run-started', {})
    mockedWrite.mockImplementationOnce(() => {
      throw Object.assign(new Error('EIO: i/o error, write'), {code: 'EIO'})
    })
    expect(() => log.close()).toThrow(/EIO/)
    // The descriptor is gone: a second close has nothing left to close.
    expect(() => log.close()).toThrow(/EBADF/)
  })
})

describe('the audit log while nothing flushes it', () => {
  it('writes a line within a fraction of a second by itself (a model may think for minutes)', async () => {
    const log = AuditLog.create(temporaryDirectory(), 'slow0001')
    log.append('step-proposed', {findingId: 'f', step: {tool: 'get_part'}})
    expect(readFileSync(log.file, 'utf8')).toBe('')
    await new Promise((resolve) => setTimeout(resolve, 450))
    expect(lines(log.file)).toHaveLength(1)
    log.close()
  })
})

describe('the audit loop and its log', () => {
  it('has the plan on disk before it asks a person, and before it parks the plan', async () => {
    const directory = temporaryDirectory()
    const init = initInventory({path: join(directory, 'inv.db'), parts: 40, days: 10, faults: 6, seed: 4})
    const backend = SqliteInventory.open(init.db)
    const state = SqliteStateStore.open(':memory:')
    const log = AuditLog.create(join(directory, 'logs'), 'asks0001')
    const seenAtAsking: string[][] = []
    const park = state.park.bind(state)
    const seenAtParking: string[][] = []
    state.park = async (plan, expiresAt) => {
      seenAtParking.push(lines(log.file).filter((line) => line.includes(plan.id)))
      return park(plan, expiresAt)
    }
    try {
      const report = await runAudit({
        backend,
        engine: new RulesEngine(),
        log,
        dryRun: false,
        state,
        approveAll: true,
        approver: async (plan) => {
          seenAtAsking.push(lines(log.file).filter((line) => line.includes(plan.id)))
          return undefined
        },
      })
      expect(report.summary.parked).toBeGreaterThan(0)
      expect(seenAtAsking).toHaveLength(report.summary.parked)
      for (const seen of [...seenAtAsking, ...seenAtParking]) expect(seen.join('\n')).toContain('"plan-made"')
      expect(seenAtParking).toHaveLength(report.summary.parked)
    } finally {
      log.close()
      state.close()
      backend.close()
    }
  })
})
