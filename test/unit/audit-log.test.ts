import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {AuditLog, hashLine, verifyLogFile, type AuditLine} from '../../src/agent/audit-log.js'
import {ConfigError} from '../../src/errors.js'
import {redactText, redactValue} from '../../src/util/redact.js'

let directory: string

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'invagent-log-'))
})

afterEach(() => {
  rmSync(directory, {recursive: true, force: true})
})

/** A complete five-line log of one run, as the audit loop writes it. */
function writeLog(): string {
  const log = AuditLog.create(directory, 'run00001')
  log.append('run-started', {engine: 'rules', dryRun: true})
  log.append('finding-detected', {id: 'ledger_mismatch:P-000001', evidence: {on_hand: 12, ledger_balance: 10}})
  log.append('tool-called', {tool: 'recompute_on_hand', args: {part_id: 'P-000001', reason: 'cache drift'}})
  log.append('outcome-recorded', {findingId: 'ledger_mismatch:P-000001', outcome: 'would_resolve'})
  log.append('run-finished', {summary: {resolved: 0, wouldResolve: 1}})
  log.close()
  return log.file
}

function lines(file: string): string[] {
  return readFileSync(file, 'utf8').trimEnd().split('\n')
}

function rewrite(file: string, edited: string[]): void {
  writeFileSync(file, edited.join('\n') + '\n')
}

describe('audit log', () => {
  it('writes a hash chain that verifies', () => {
    const file = writeLog()
    expect(verifyLogFile(file)).toEqual({file, ok: true, lines: 5})
    const parsed = lines(file).map((text) => JSON.parse(text) as AuditLine)
    expect(parsed.map((line) => [line.seq, line.event, line.run])).toEqual([
      [1, 'run-started', 'run00001'],
      [2, 'finding-detected', 'run00001'],
      [3, 'tool-called', 'run00001'],
      [4, 'outcome-recorded', 'run00001'],
      [5, 'run-finished', 'run00001'],
    ])
    expect(parsed[0].prev).toBe('0'.repeat(64))
    for (let index = 1; index < parsed.length; index++) expect(parsed[index].prev).toBe(parsed[index - 1].hash)
    const {hash, ...body} = parsed[2]
    expect(hashLine(body)).toBe(hash)
  })

  it('reports an edited value with its line number', () => {
    const file = writeLog()
    const edited = lines(file)
    edited[2] = edited[2].replace('"cache drift"', '"cache drift, approved"')
    rewrite(file, edited)
    expect(verifyLogFile(file)).toEqual({
      file,
      ok: false,
      lines: 5,
      problem: {line: 3, message: 'its content does not match its hash: the line was edited'},
    })
  })

  it('reports an edited line whose hash was recomputed at the next line', () => {
    const file = writeLog()
    const edited = lines(file)
    const line = JSON.parse(edited[1]) as AuditLine
    const {hash: _old, ...body} = {
      ...line,
      data: {id: 'ledger_mismatch:P-000001', evidence: {on_hand: 10, ledger_balance: 10}},
    }
    edited[1] = JSON.stringify({...body, hash: hashLine(body)})
    rewrite(file, edited)
    const result = verifyLogFile(file)
    expect(result.ok).toBe(false)
    expect(result.problem?.line).toBe(3)
    expect(result.problem?.message).toMatch(/^its "prev" does not match/)
  })

  it('reports a deleted middle line', () => {
    const file = writeLog()
    const edited = lines(file)
    edited.splice(1, 1)
    rewrite(file, edited)
    expect(verifyLogFile(file)).toEqual({
      file,
      ok: false,
      lines: 4,
      problem: {line: 2, message: 'sequence number 3 where 2 was expected: line 2 is missing or out of order'},
    })
  })

  it('reports a deleted first line', () => {
    const file = writeLog()
    rewrite(file, lines(file).slice(1))
    expect(verifyLogFile(file).problem).toEqual({
      line: 1,
      message: 'sequence number 2 where 1 was expected: line 1 is missing or out of order',
    })
  })

  it('reports a deleted last line (run-finished missing) after the last line', () => {
    const file = writeLog()
    rewrite(file, lines(file).slice(0, -1))
    expect(verifyLogFile(file)).toEqual({
      file,
      ok: false,
      lines: 4,
      problem: {
        line: 5,
        message: 'the log ends without "run-finished": lines at the end are missing, or the run was interrupted',
      },
    })
  })

  it('reports two swapped lines at the first of them', () => {
    const file = writeLog()
    const edited = lines(file)
    ;[edited[2], edited[3]] = [edited[3], edited[2]]
    rewrite(file, edited)
    expect(verifyLogFile(file).problem).toEqual({
      line: 3,
      message: 'sequence number 4 where 3 was expected: line 3 is missing or out of order',
    })
  })

  it('reports corrupt JSON with its line number', () => {
    const file = writeLog()
    const edited = lines(file)
    edited[3] = edited[3].slice(0, 40)
    rewrite(file, edited)
    expect(verifyLogFile(file)).toEqual({
      file,
      ok: false,
      lines: 5,
      problem: {line: 4, message: 'not valid JSON (edited or truncated)'},
    })
  })

  it('reports an empty log, and a missing file as a ConfigError', () => {
    const file = join(directory, 'empty.jsonl')
    writeFileSync(file, '')
    expect(verifyLogFile(file)).toEqual({file, ok: false, lines: 0, problem: {line: 1, message: 'the log is empty'}})
    expect(() => verifyLogFile(join(directory, 'missing.jsonl'))).toThrow(ConfigError)
  })
})

describe('redaction in the audit log', () => {
  const pii = {
    email: 'jane.doe+orders@example.co.uk',
    international: '+44 20 7946 0958',
    parenthesised: '(555) 123-4567',
    dashed: '555-123-4567',
    dotted: '555.123.4567',
    inText: 'customer jane.doe@example.com called from 555-123-4567 about SO-2026-0000123/1',
  }
  const ids = {
    part: 'P-000123',
    txn: 'T-0000456',
    adjustment: 'T-ADJ-0123456789ab',
    order: 'SO-2026-0000123/1',
    asn: 'ASN-2026-0000001/2',
    reservation: 'R-000042',
    at: '2026-01-31T12:00:00.000Z',
    day: '2026-01-31',
    sku: 'BLT-10001',
    location: 'WH1-B04-2',
    epoch: 1769860800000,
  }

  it('redacts emails and phone numbers at every depth and keeps invagent identifiers', () => {
    const log = AuditLog.create(directory, 'run00002')
    log.append('run-started', {pii, nested: {list: [pii.email, {phone: pii.dashed}]}, ids})
    log.append('run-finished', {})
    log.close()
    const text = readFileSync(log.file, 'utf8')
    const data = (JSON.parse(text.split('\n')[0]) as AuditLine).data
    expect(data).toEqual({
      pii: {
        email: '[redacted-email]',
        international: '[redacted-phone]',
        parenthesised: '[redacted-phone]',
        dashed: '[redacted-phone]',
        dotted: '[redacted-phone]',
        inText: 'customer [redacted-email] called from [redacted-phone] about SO-2026-0000123/1',
      },
      nested: {list: ['[redacted-email]', {phone: '[redacted-phone]'}]},
      ids,
    })
    for (const value of [pii.email, 'jane.doe@example.com', '7946 0958', '123-4567', '123.4567'])
      expect(text).not.toContain(value)
    expect(verifyLogFile(log.file).ok).toBe(true)
  })

  it.each(Object.entries(ids).filter(([, value]) => typeof value === 'string'))(
    'leaves the %s identifier %s alone',
    (_kind, value) => {
      expect(redactText(`saw ${value as string} in the sync log`)).toBe(`saw ${value as string} in the sync log`)
    },
  )
})

describe('redaction edge cases', () => {
  it.each(['+14155552671', '+4915112345678', '0049 30 1234567', '+1 (415) 555-2671'])(
    'redacts the compact or prefixed phone number %s',
    (phone) => {
      expect(redactText(`call ${phone} today`)).toBe('call [redacted-phone] today')
    },
  )

  it.each(['qty 1200 1500 2000', 'on_hand 1000 1200 1300', 'moved 12 240 3600 units'])(
    'leaves runs of quantities alone: %s',
    (text) => {
      expect(redactText(text)).toBe(text)
    },
  )

  it('redacts object keys as well as values', () => {
    expect(redactValue({'jane@example.com': {'+14155552671': 'x'}})).toEqual({
      '[redacted-email]': {'[redacted-phone]': 'x'},
    })
  })
})
