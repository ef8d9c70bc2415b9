import {describe, expect, it} from 'vitest'

import {Pseudonymizer, findPii} from '../../src/dataset/pii.js'
import {redactText, redactValue} from '../../src/util/redact.js'

/*
 * National phone numbers written with spaces reached the audit log verbatim, while `dataset scrub`
 * caught some of them: the log had its own, narrower detector. Both now use findPii.
 */
const NUMBERS = [
  ['a London number', 'the driver is on 020 7946 0958 today', '020 7946 0958'],
  ['a North American number with spaces', 'customer 415 555 2671 asked twice', '415 555 2671'],
  ['a number after "tel:"', 'tel: 555 123 4567', '555 123 4567'],
  ['a UK mobile after "call me on"', 'call me on 07700 900123 about the pallet', '07700 900123'],
  ['a Manchester number', 'site office 0161 496 0000', '0161 496 0000'],
] as const

describe('phone numbers reached the audit log verbatim', () => {
  it.each(NUMBERS)('redacts %s in a log value', (_what, text, phone) => {
    expect(redactText(text)).toBe(text.replace(phone, '[redacted-phone]'))
    expect(JSON.stringify(redactValue({message: text, [text]: 1}))).not.toContain(phone)
  })

  it.each(NUMBERS)('dataset scrub finds %s too (one detector)', (_what, text, phone) => {
    expect(findPii(text).map((match) => match.value)).toEqual([phone])
    expect(new Pseudonymizer().replace(text).text).not.toContain(phone)
  })

  it('redacts names the scrubber finds, with their own marker', () => {
    expect(redactText('approved by Chukwuemeka Obi, cc: jane@acme.com')).toBe(
      'approved by [redacted-name], cc: [redacted-email]',
    )
  })

  it.each([
    'qty 1200 1500 2000',
    'moved 12 240 3600 units',
    'counts 240 360 1200 4800',
    'epoch 1769860800000 and 0 100 200',
    'bins 020 030 040',
    'SO-2026-0000123/1, T-0000456, P-000123, WH1-B04-2',
  ])('leaves quantities and identifiers alone: %j', (text) => {
    expect(redactText(text)).toBe(text)
  })
})
