import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import fc from 'fast-check'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {AuditLog, verifyLogFile} from '../../src/agent/audit-log.js'
import {canonicalJson} from '../../src/util/canonical-json.js'
import {redactedCanonicalJson, redactValue} from '../../src/util/redact.js'

/*
 * Every audit log line is serialized once, redacting and sorting keys as it goes; it must be the
 * same text as redacting a copy and then writing it canonically, whatever the value holds.
 */

const PIECES = [
  'P-000123',
  'T-0000042',
  'SO-2026-0000123/1',
  'jane.doe@example.com',
  'call +1 (415) 555-0134',
  'Maria Garcia',
  'ledger_mismatch:P-000002',
  'sk-live-0123456789abcdef',
  'findingId',
  'on_hand',
  '10',
  '2',
  '',
  'ü',
  '\u0000',
]
const text = fc.oneof(
  fc.string(),
  fc.array(fc.constantFrom(...PIECES), {maxLength: 4}).map((parts) => parts.join(' ')),
)
const value = fc.letrec((tie) => ({
  leaf: fc.oneof(
    text,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.constant(Number.NaN),
  ),
  node: fc.oneof(
    {depthSize: 'small'},
    tie('leaf'),
    fc.array(tie('node'), {maxLength: 4}),
    fc.dictionary(text, tie('node'), {maxKeys: 5}),
  ),
})).node

describe('one-pass redacted canonical JSON', () => {
  it('is canonicalJson(redactValue(value)) for any value, with and without secrets', () => {
    fc.assert(
      fc.property(value, fc.boolean(), (item, withSecret) => {
        const secrets = withSecret ? ['sk-live-0123456789abcdef'] : []
        expect(redactedCanonicalJson(item, secrets)).toBe(canonicalJson(redactValue(item, secrets)) ?? 'null')
      }),
      {numRuns: 2000, seed: 3},
    )
  })

  it('leaves out an own "__proto__" key (a model’s JSON may hold one), as the copy it replaces did', () => {
    const parsed = JSON.parse('{"__proto__": {"email": "john.doe@example.com"}, "a": 1}') as unknown
    expect(Object.keys(parsed as object)).toContain('__proto__')
    expect(redactedCanonicalJson(parsed)).toBe(canonicalJson(redactValue(parsed)))
    expect(redactedCanonicalJson({step: parsed})).toBe('{"step":{"a":1}}')
  })

  it('lets a later key that redacts to the same text take the place of an earlier one', () => {
    const item = {'jane@example.com': 1, 'bob@example.com': 2, b: undefined, a: [undefined, 'x']}
    expect(redactedCanonicalJson(item)).toBe(canonicalJson(redactValue(item)))
    expect(JSON.parse(redactedCanonicalJson(item))).toEqual({'[redacted-email]': 2, a: [null, 'x']})
  })
})

describe('every line the audit log writes', () => {
  it('verifies, whatever its data holds ("__proto__" keys from parsed JSON included)', () => {
    const directory = mkdtempSync(join(tmpdir(), 'invagent-log-verify-'))
    try {
      const withProto = fc
        .tuple(value, value)
        .map(([first, second]) =>
          JSON.parse(`{"__proto__": ${JSON.stringify(first) ?? 'null'}, "x": ${JSON.stringify(second) ?? 'null'}}`),
        )
      fc.assert(
        fc.property(fc.array(fc.oneof(value, withProto), {minLength: 1, maxLength: 6}), (items) => {
          const log = AuditLog.create(directory, 'verify01')
          for (const item of items) log.append('tool-called', item)
          log.append('run-finished', {})
          log.close()
          expect(verifyLogFile(log.file)).toMatchObject({ok: true, lines: items.length + 1})
          rmSync(log.file)
        }),
        {numRuns: 200, seed: 5},
      )
    } finally {
      rmSync(directory, {recursive: true, force: true})
    }
  })
})

describe('the audit log’s buffered lines', () => {
  let directory: string
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'invagent-log-buffer-'))
  })
  afterEach(() => {
    rmSync(directory, {recursive: true, force: true})
  })

  it('reach the file on flush and on close, in order, with an unbroken chain', () => {
    const log = AuditLog.create(directory, 'run00002')
    log.append('run-started', {engine: 'rules'})
    log.append('finding-detected', {id: 'negative_on_hand:P-000001', evidence: {on_hand: -3}})
    expect(readFileSync(log.file, 'utf8')).toBe('')
    log.flush()
    const flushed = readFileSync(log.file, 'utf8').trimEnd().split('\n')
    expect(flushed.map((line) => (JSON.parse(line) as {seq: number}).seq)).toEqual([1, 2])
    log.append('outcome-recorded', {findingId: 'negative_on_hand:P-000001', contact: 'jane.doe@example.com'})
    log.append('run-finished', {summary: {resolved: 1}})
    log.close()
    const lines = readFileSync(log.file, 'utf8').trimEnd().split('\n')
    expect(lines).toHaveLength(4)
    expect(lines[2]).toContain('[redacted-email]')
    expect(lines[2]).not.toContain('jane.doe')
    expect(verifyLogFile(log.file)).toEqual({file: log.file, ok: true, lines: 4})
  })

  it('are written without waiting for a flush once they hold a quarter of a megabyte', () => {
    const log = AuditLog.create(directory, 'run00003')
    const big = 'x'.repeat(1000)
    for (let index = 0; index < 300; index++) log.append('tool-called', {index, big})
    const written = readFileSync(log.file, 'utf8').trimEnd().split('\n')
    expect(written.length).toBeGreaterThan(200)
    expect(written.length).toBeLessThan(300)
    log.append('run-finished', {})
    log.close()
    expect(verifyLogFile(log.file).ok).toBe(true)
  })
})
