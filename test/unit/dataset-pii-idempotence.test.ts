import {describe, expect, it} from 'vitest'

import {findPii, Pseudonymizer} from '../../src/dataset/pii.js'
import {Random} from '../../src/util/random.js'

/*
 * Scrubbing must be idempotent whatever surrounds the PII: random sentences built from names,
 * cues, honorifics, numbers, identifiers and punctuation (often glued together) are pseudonymised
 * once; nothing in the result may be detected again, and the changes reported must describe the
 * original text exactly.
 */
const FRAGMENTS = [
  'Jane',
  'Doe',
  'Maria',
  'Gonzalez',
  'Priya',
  'Okafor',
  'José',
  'Müller-Lüdenscheidt',
  "O'Brien",
  'McDonald',
  'Anna-Lena',
  'Smith',
  'van der',
  'Berg',
  'J.',
  'K.',
  'Mr.',
  'Dr',
  'Mrs',
  'San',
  'St',
  'contact:',
  'attn:',
  'approved by',
  'escalated to',
  'per',
  'by',
  'thanks,',
  'cc:',
  'and',
  'call me on',
  'tel:',
  'mobile #:',
  '555-123-4567',
  '(555) 123-4567',
  '+44 20 7946 0958',
  '0049 30 1234567',
  '07700 900123',
  '12',
  '34',
  '1200',
  '+120',
  '2026-01-31',
  '12.500.000',
  'jane.doe@acme.com',
  'ops@warehouse.io',
  'P-000123',
  'T-0000456',
  'SO-2026-0000123/1',
  'FAS-10023',
  'WH1-B04-2',
  'Hex',
  'Bolt',
  'key',
  'oil',
  'Warehouse',
  'Team',
  'Receiving',
  'the',
  'count',
  'was',
  'short',
  'Allen',
  'John Deere',
  'Sarah',
  'Lucas',
  'Fort',
  'Port',
  'Zone',
  'Charlie',
  'Will',
  '+1',
  '00',
  '(312)',
  '555-0100',
  '4567',
  '@',
  'x@y.co',
  'Mc',
  '-Smith',
  'Obi',
  'Dear',
  'Regards,',
  'Hugo Boss',
  'Anna',
  'Lena',
  'Zoë',
  '—',
  '\t',
  ',',
  '.',
  ';',
  '(',
  ')',
  '"',
  '-',
  ':',
  '\n',
]

function sentence(random: Random): string {
  const length = random.int(1, 20)
  let text = ''
  for (let index = 0; index < length; index++) {
    const fragment = random.pick(FRAGMENTS)
    text += index === 0 || /^[,.;):]$/.test(fragment) || random.bool(0.3) ? fragment : ` ${fragment}`
  }
  return text
}

describe('pseudonymising is idempotent on random text', () => {
  it('finds nothing in what it wrote, for 5,000 random sentences', () => {
    const random = new Random(20_260_131)
    const pseudonymizer = new Pseudonymizer()
    let replaced = 0
    for (let index = 0; index < 5000; index++) {
      const text = sentence(random)
      const once = pseudonymizer.replace(text)
      replaced += once.changes.length
      const shown = `${JSON.stringify(text)} → ${JSON.stringify(once.text)}`
      expect(findPii(once.text), shown).toEqual([])
      expect(pseudonymizer.replace(once.text), shown).toEqual({text: once.text, changes: []})
      // The changes describe the original text, and applying them gives the result.
      let rebuilt = ''
      let position = 0
      for (const change of once.changes) {
        expect(change.start, shown).toBeGreaterThanOrEqual(position)
        expect(text.slice(change.start, change.end), shown).toBe(change.value)
        rebuilt += text.slice(position, change.start) + change.replacement
        position = change.end
      }
      expect(rebuilt + text.slice(position), shown).toBe(once.text)
    }
    expect(replaced).toBeGreaterThan(3000)
  })
})
