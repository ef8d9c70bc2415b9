import {describe, expect, it} from 'vitest'

import {FIRST_NAMES, Pseudonymizer, SYNTHETIC_NAME_LISTS, findPii, type PiiKind} from '../../src/dataset/pii.js'

/** What findPii reports, as `kind:value` pairs in order. */
function found(text: string): string[] {
  return findPii(text).map((match) => `${match.kind}:${match.value}`)
}

describe('findPii: emails', () => {
  it.each([
    ['write to jane.doe+orders@example.co.uk today', 'jane.doe+orders@example.co.uk'],
    ['<J.Smith@Acme-Logistics.com>', 'J.Smith@Acme-Logistics.com'],
    ['mailto:ops_team@warehouse.io.', 'ops_team@warehouse.io'],
  ])('finds the address in %j', (text, email) => {
    expect(found(text)).toEqual([`email:${email}`])
  })

  it('reports positions that slice back to the value', () => {
    const text = 'cc: jane.doe@acme.com and +44 20 7946 0958; contact: Priya Raghunathan'
    for (const match of findPii(text)) expect(text.slice(match.start, match.end)).toBe(match.value)
    expect(found(text)).toEqual(['email:jane.doe@acme.com', 'phone:+44 20 7946 0958', 'name:Priya Raghunathan'])
  })

  it('does not report names or numbers inside an address', () => {
    expect(found('john.smith.5551234567@mail.example.com')).toEqual(['email:john.smith.5551234567@mail.example.com'])
  })

  it('leaves reserved .invalid addresses alone (they belong to no one)', () => {
    expect(found('send to person-3f2a9c@example.invalid')).toEqual([])
  })
})

describe('findPii: phone numbers', () => {
  it.each([
    ['+44 20 7946 0958'],
    ['+14155552671'],
    ['+1 (415) 555-2671'],
    ['0049 30 1234567'],
    ['(555) 123-4567'],
    ['555-123-4567'],
    ['555.123.4567'],
  ])('finds %s', (phone) => {
    expect(found(`reach the driver at ${phone} before noon`)).toEqual([`phone:${phone}`])
  })

  it.each([
    ['tel: 555 123 4567', '555 123 4567'],
    ['Tel. 030 1234 5678', '030 1234 5678'],
    ['call me on 07700 900123', '07700 900123'],
    ['mobile #: 0412 345 678', '0412 345 678'],
  ])('finds a number introduced as one: %j', (text, phone) => {
    expect(found(text)).toEqual([`phone:${phone}`])
  })

  it('does not swallow the parenthesis that closes around a number', () => {
    expect(found('driver (+44 20 7946 0958) called')).toEqual(['phone:+44 20 7946 0958'])
  })

  it.each([
    ['part id', 'get_part P-000123'],
    ['transaction id', 'T-0000456 and T-ADJ-0123456789ab'],
    ['order reference', 'SO-2026-0000123/1 and ASN-2026-0000001/2'],
    ['reservation', 'R-000042'],
    ['SKU', 'FAS-10023, LEG-FAS10023, ELC-20417'],
    ['location', 'WH1-B04-2'],
    ['date', '2026-01-31, 2026-01-31T12:00:00.000Z, 31.01.2026'],
    ['epoch milliseconds', 'created_at 1769860800000'],
    ['quantities', 'qty 1200 1500 2000, moved 12 240 3600 units'],
    ['signed delta', 'adjust_quantity delta +120 then -45'],
    ['thousands', '12.500.000 units and 1.250.000 kg'],
    ['IP address', 'gateway 192.168.100.200 timed out'],
    ['timeout', 'WMS timeout after 30000 ms'],
    ['lot and batch codes', 'lot L-48213 on hold, batch B-73120, invoice INV-2026-55231, code X123-45'],
    ['a short number after a cue', 'call at 10:30, phone ext 204'],
    ['a number reserved for fiction', '+1 202-555-0147 and (312) 555-0100'],
  ])('leaves a %s alone: %j', (_what, text) => {
    expect(found(text)).toEqual([])
  })
})

describe('findPii: person names', () => {
  it.each([
    ['Mr. Smith confirmed the count', ['name:Smith']],
    ['Ask Dr Okonkwo-Adeyemi about it', ['name:Okonkwo-Adeyemi']],
    ["Mrs O'Brien and Herr Müller", ["name:O'Brien", 'name:Müller']],
    ['contact: Jane Doe', ['name:Jane Doe']],
    ['Contact: Priya Raghunathan (buyer)', ['name:Priya Raghunathan']],
    ['attn: Okafor', ['name:Okafor']],
    ['approved by Chukwuemeka Obi on Monday', ['name:Chukwuemeka Obi']],
    ['escalated to Ngata', ['name:Ngata']],
    ['per John, the receipt is late', ['name:John']],
    ['per J. Smith the pallet was short', ['name:J. Smith']],
    ['Maria checked the count', ['name:Maria']],
    ["Sarah's note says 4 cartons", ['name:Sarah']],
    ['Thanks, Emily Watson', ['name:Emily Watson']],
    ['signed off by Pieter van der Berg', ['name:Pieter van der Berg']],
    ['José García and Zoë Martin', ['name:José García', 'name:Zoë Martin']],
    ['Anna-Lena Schmidt counted it', ['name:Anna-Lena Schmidt']],
    ['Dear Mr McDonald,', ['name:McDonald']],
  ])('finds the name in %j', (text, expected) => {
    expect(found(text)).toEqual(expected)
  })

  it.each([
    [
      'part names',
      'Hex Bolt M8 zinc, Socket Cap Screw 4x40, Nitrile Gloves size L, Dust Mask FFP2, Hydraulic Oil ISO 46',
    ],
    ['tools', 'Allen key 5mm, Stanley knife blades, Phillips screwdriver, Vernier Caliper'],
    ['eponymous products after a first name', 'Lucas oil, Emma model, Jason kit'],
    ['tool calls', 'get_part, list_transactions, recompute_on_hand, adjust_quantity, escalate'],
    ['warehouse locations', 'WH1-B04-2, Dock Door 4, Zone Charlie, Aisle 12 Bay 3, Receiving Bay'],
    [
      'sentence openers',
      'Check the ledger. Will the receipt post? Grant access. Mark it void. May the count hold. Rose by 40.',
    ],
    [
      'more sentence openers',
      'Jack up the pallet. Jerry can 20L. Bobby pins. Sandy floor. Frank review. Bill the customer.',
    ],
    ['places', 'San Jose warehouse, Santa Maria depot, St Helen dock, Fort William, Port Elizabeth, Sofia, Nancy'],
    ['brands', 'Kimberly-Clark nitrile gloves, Zara order, John Deere parts'],
    ['units and dates', 'Kelvin scale, Julian date 26031, April 2026, Tuesday'],
    [
      'roles and teams after a cue',
      'contact: Warehouse Team; escalated to Finance; approved by Quality Control; cc: Receiving',
    ],
    ['systems after a cue', 'confirmed by Shopify; checked by System; entered by Admin'],
    ['capitalised words after a weak cue', 'per Policy, from Warehouse North, by Monday, via Integration, per Smith'],
    ['an initial without a cue', 'Plan B. Then recount.'],
    ['honorifics without a name', 'Mr. WMS, Dr. 4, Ms.'],
    ['camelCase and identifiers', 'NetSuite, JohnSmith42, john_smith, jane'],
    [
      'free text of the simulator',
      "SKU 'FAS-10023' not found in item master; webhook for SO-2026-0000123/1 redelivered (attempt 2)",
    ],
  ])('leaves %s alone', (_what, text) => {
    expect(found(text)).toEqual([])
  })

  it('never takes a first name from the list that is also an English word, a place or a brand', () => {
    for (const word of [
      'Will',
      'Mark',
      'May',
      'Grant',
      'Rose',
      'Amber',
      'Jack',
      'Jerry',
      'Bobby',
      'Austin',
      'Jordan',
      'Victoria',
      'Charlotte',
      'Allen',
      'Stanley',
      'Mercedes',
      'Kelvin',
      'Henry',
      'Charlie',
      'Mike',
      'Oscar',
    ]) {
      expect(FIRST_NAMES.has(word), word).toBe(false)
    }
  })
})

describe('Pseudonymizer', () => {
  const text =
    'contact: Jane Doe <jane.doe@acme.com>, tel: +44 20 7946 0958; Mr. Doe confirmed; per Jane about P-000123'

  it('replaces every match and keeps the rest of the text byte for byte', () => {
    const {text: scrubbed, changes} = new Pseudonymizer().replace(text)
    expect(changes.map((change) => change.kind)).toEqual(['name', 'email', 'phone', 'name', 'name'])
    expect(scrubbed).toMatch(
      /^contact: \p{Lu}\p{Ll}+ \p{Lu}\p{Ll}+ <person-[0-9a-f]{6}@example\.invalid>, tel: \+1 \d{3}-555-01\d\d; Mr\. \p{Lu}\p{Ll}+ confirmed; per \p{Lu}\p{Ll}+ about P-000123$/u,
    )
    for (const value of ['Jane', 'Doe', 'jane.doe', 'acme', '7946']) expect(scrubbed).not.toContain(value)
  })

  it('maps one value to one pseudonym, word by word for names', () => {
    const {text: scrubbed} = new Pseudonymizer().replace(text)
    const [, given, surname] = /^contact: (\S+) (\S+) </.exec(scrubbed)!
    expect(scrubbed).toContain(`Mr. ${surname} confirmed`)
    expect(scrubbed).toContain(`per ${given} about`)
    expect(given).not.toBe(surname)
  })

  it('is deterministic across instances, and keyed', () => {
    const once = new Pseudonymizer().replace(text).text
    expect(new Pseudonymizer().replace(text).text).toBe(once)
    expect(new Pseudonymizer({key: 'another secret'}).replace(text).text).not.toBe(once)
  })

  it('normalises what is the same address or number', () => {
    const pseudonymizer = new Pseudonymizer()
    expect(pseudonymizer.pseudonym('email', 'Jane.Doe@Acme.com')).toBe(
      pseudonymizer.pseudonym('email', 'jane.doe@acme.com'),
    )
    expect(pseudonymizer.pseudonym('phone', '+1 (415) 555-2671')).toBe(pseudonymizer.pseudonym('phone', '415.555.2671'))
    expect(pseudonymizer.pseudonym('phone', '0044 20 7946 0958')).toBe(
      pseudonymizer.pseudonym('phone', '+44 20 7946 0958'),
    )
    expect(pseudonymizer.pseudonym('phone', '+44 20 7946 0958')).not.toBe(
      pseudonymizer.pseudonym('phone', '+44 20 7946 0959'),
    )
  })

  it('writes pseudonyms that are never detected again, so replacing twice changes nothing', () => {
    const pseudonymizer = new Pseudonymizer()
    const corpus = [
      text,
      'Dr. José Müller-Lüdenscheidt, signed off by Pieter van der Berg, per J. Smith, call me on 07700 900123',
      "Maria, John, Sarah, Priya, Okafor (attn: Okafor Chukwuemeka), Mrs O'Brien, 555-123-4567, (555) 123-4567",
    ]
    for (const line of corpus) {
      const once = pseudonymizer.replace(line)
      expect(once.changes.length).toBeGreaterThan(0)
      expect(findPii(once.text)).toEqual([])
      expect(pseudonymizer.replace(once.text)).toEqual({text: once.text, changes: []})
    }
  })

  it('does not find a pseudonym again when digits or words follow it', () => {
    const pseudonymizer = new Pseudonymizer()
    for (const line of [
      'call 555-123-4567 12 times',
      'tel: +44 20 7946 0958 34 56 left',
      'jane@acme.com.x',
      'Jane Doe Smith Brown Maria Lopez',
      'per J. Smith Jones',
    ]) {
      const once = pseudonymizer.replace(line).text
      expect(findPii(once), once).toEqual([])
    }
  })

  it('draws names from synthetic lists that share nothing with the first names or each other', () => {
    const all = [...SYNTHETIC_NAME_LISTS.given, ...SYNTHETIC_NAME_LISTS.surnames]
    expect(new Set(all).size).toBe(all.length)
    for (const name of all) {
      expect(FIRST_NAMES.has(name), name).toBe(false)
      for (const context of [`Mr. ${name}`, `contact: ${name}`, `approved by ${name} ${name}`])
        expect(findPii(context), context).toEqual([])
    }
  })

  it.each<[PiiKind, string, RegExp]>([
    ['email', 'a@b.co', /^person-[0-9a-f]{6}@example\.invalid$/],
    ['phone', '555-123-4567', /^\+1 \d{3}-555-01\d{2}$/],
    ['name', 'Jane', new RegExp(`^(?:${SYNTHETIC_NAME_LISTS.given.join('|')})$`)],
    ['name', 'Smith', new RegExp(`^(?:${SYNTHETIC_NAME_LISTS.surnames.join('|')})$`)],
  ])('a %s pseudonym of %s looks like %s', (kind, value, shape) => {
    expect(new Pseudonymizer().pseudonym(kind, value)).toMatch(shape)
  })
})
