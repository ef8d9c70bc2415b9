import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {AuditLog, verifyLogFile, type AuditLine} from '../../src/agent/audit-log.js'
import {findPii} from '../../src/dataset/pii.js'
import {classifyMessage, unitEvidence} from '../../src/engines/message-classifier.js'
import {LOGGED_STRING_LIMIT, redactText} from '../../src/util/redact.js'

const MB = 1 << 20
const fill = (unit: string, size: number) => unit.repeat(Math.ceil(size / unit.length)).slice(0, size)

function millisecondsOf(work: () => unknown): number {
  const start = performance.now()
  work()
  return performance.now() - start
}

/*
 * Texts that make a backtracking pattern try every start or every split: long runs of one
 * character class, a cue followed by a run, a keyword repeated without the word that completes it.
 * Each pattern that reads inventory or model text must get through a megabyte of each in time
 * proportional to its length (the quadratic email pattern took 15 s on 128 KB).
 */
const ADVERSARIAL: Record<string, string> = {
  letters: fill('a', MB),
  digits: fill('1', MB),
  'a cue and spaces': `tel${fill(' ', MB)}x1`,
  'cue words and digits': fill('tel: 1 ', MB),
  'dotted letters': fill('a.', MB),
  'at signs': fill('a@', MB),
  'a long domain': `a@${fill('b.', MB)}`,
  'digit groups': fill('123 ', MB),
  dashes: fill('1-', MB),
  parentheses: fill('(1', MB),
  'plus signs': fill('+1 ', MB),
  'capitalised words': fill('Maria ', MB),
  'cue words': fill('approved by ', MB),
  'accented names': fill('Zoë Müller ', MB),
  'repeated keywords': fill('sku unit job part ', MB),
  'realistic lines': fill(
    'Inbound line refused for SKU FAS-10023 qty 12, contact jane@acme.com or 020 7946 0958. ',
    MB,
  ),
}

describe(
  'the email pattern was quadratic on long runs of letters or digits (an audit stalled holding the ' + 'database)',
  () => {
    it.each(['a', '7'])('redacts a 10 MB run of %j in under a second', (unit) => {
      const text = fill(unit, 10 * MB)
      expect(millisecondsOf(() => redactText(text))).toBeLessThan(1000)
    })

    it.each(Object.entries(ADVERSARIAL))('finds PII in a megabyte of %s in linear time', (_name, text) => {
      expect(millisecondsOf(() => findPii(text))).toBeLessThan(3000)
    })

    it.each(Object.entries(ADVERSARIAL))('classifies a megabyte of %s in linear time', (_name, text) => {
      expect(
        millisecondsOf(() => {
          classifyMessage(text, 'error')
          unitEvidence(text)
        }),
      ).toBeLessThan(1000)
    })

    it('still finds every number in a long text with thousands of them', () => {
      const text = 'ring 020 7946 0958 or jane@acme.com; '.repeat(25_000)
      const kinds = findPii(text).map((match) => match.kind)
      expect(kinds.filter((kind) => kind === 'phone')).toHaveLength(25_000)
      expect(kinds.filter((kind) => kind === 'email')).toHaveLength(25_000)
    })
  },
)

describe('an audit log line with a 10 MB message', () => {
  const directory = mkdtempSync(join(tmpdir(), 'invagent-redact-'))
  afterAll(() => rmSync(directory, {recursive: true, force: true}))

  it('is written in under a second, keeps the start redacted and says what was left out', () => {
    const message = `customer jane@acme.com on 020 7946 0958: ${fill('Maria approved by Okafor 1-2 ', 10 * MB)}`
    const log = AuditLog.create(directory, 'bigmsg01')
    const elapsed = millisecondsOf(() =>
      log.append('tool-called', {tool: 'get_integration_events', result: [{message}]}),
    )
    log.append('run-finished', {})
    log.close()
    expect(elapsed).toBeLessThan(1000)
    const line = JSON.parse(readFileSync(log.file, 'utf8').split('\n')[0]) as AuditLine
    const logged = (line.data as {result: Array<{message: string}>}).result[0].message
    // Cut first, then redacted: a marker may be longer than what it replaces.
    expect(logged.length).toBeLessThan(3 * LOGGED_STRING_LIMIT)
    expect(logged).toMatch(/^customer \[redacted-email\] on \[redacted-phone\]: /)
    expect(logged).toMatch(new RegExp(`more characters of ${message.length}, sha256 [0-9a-f]{64}\\]$`))
    expect(logged).not.toContain('Okafor')
    expect(verifyLogFile(log.file).ok).toBe(true)
  })
})
