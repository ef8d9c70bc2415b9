import {createHmac} from 'node:crypto'

import {EMAIL, PHONE_SHAPES} from '../util/redact.js'

/*
 * PII in free text: email addresses, phone numbers and person names. Precision comes first: a
 * dataset of inventory work is full of identifiers (P-000123, T-0000456, SO-2026-0000123/1,
 * FAS-10023, WH1-B04-2), dates, quantities, part names ("Hex bolt M8 zinc") and tool names, and
 * none of them may be taken for PII. Names are found by a curated list of first names (words that
 * are also English words, places, tools or brands are left out), by an honorific ("Mr. Smith"),
 * or by a cue that introduces a person ("contact: Jane Doe", "approved by Okafor").
 *
 * The pseudonyms `Pseudonymizer` writes are realistic in shape but reserved or synthetic, and the
 * detector never reports them; it also looks again after replacing (a pseudonym changes the text
 * next to it), so scrubbing twice changes nothing the second time.
 */

export type PiiKind = 'email' | 'phone' | 'name'

/** One span of PII: `text.slice(start, end) === value`. */
export interface PiiMatch {
  kind: PiiKind
  start: number
  end: number
  value: string
}

/** A match and what replaced it. */
export interface PiiChange extends PiiMatch {
  replacement: string
}

// ---------------------------------------------------------------------------------------------
// Word lists

function words(text: string): Set<string> {
  return new Set(text.split(/\s+/).filter(Boolean))
}

/**
 * First names common in English-, Spanish-, Portuguese-, French-, German-, Italian-, Dutch-,
 * Nordic-, Slavic-, Arabic-, South Asian-, East Asian- and West African-speaking workplaces.
 * Names that are also English words (Will, Mark, May, Grant, Rose, Amber, Jack, Jerry, Bobby),
 * places (Austin, Jordan, Victoria, Charlotte), tools and brands (Allen, Stanley, Mercedes),
 * units (Kelvin, Henry), radio call letters (Charlie, Mike, Oscar) and names that are often a
 * city, region or brand (Nancy, Sofia, Brittany, Zara, Kimberly-Clark) are left out on purpose.
 * Looked up without accents: José, João and Zoë match Jose, Joao and Zoe.
 */
export const FIRST_NAMES = words(`
  James John Robert Michael William David Richard Joseph Thomas Christopher Daniel Matthew Anthony
  Donald Steven Stephen Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward Jason
  Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Larry Justin Scott Brandon Benjamin Samuel Gregory
  Alexander Patrick Dennis Tyler Aaron Jose Adam Nathan Douglas Zachary Peter Kyle Walter Ethan
  Jeremy Harold Keith Noah Gerald Carl Sean Arthur Lawrence Jesse Dylan Bryan Joe Bruce Albert
  Willie Gabriel Logan Alan Juan Wayne Roy Ralph Eugene Vincent Russell Elijah Louis Philip Johnny
  Oliver Harry Liam Lucas Leo Hugo Theo Owen Connor Callum Rhys Gareth Ian Neil Colin Graham Stuart
  Alistair Fergus Declan Niall Ciaran Sebastian Simon Martin Dominic Adrian Marcus
  Lukas Jonas Felix Tobias Niklas Florian Matthias Stefan Andreas Jens Lars Sven Anders Nils Pieter
  Joost Bram Luca Marco Matteo Giuseppe Giovanni Francesco Alessandro Pierre Antoine Nicolas Julien
  Mathieu Thierry Olivier Pablo Javier Carlos Miguel Alejandro Diego Sergio Jorge Luis Fernando
  Manuel Ricardo Eduardo Rafael Andres Joao Tiago Paulo Pedro Mohammed Muhammad Ahmed Omar Hassan
  Hussein Karim Youssef Mustafa Ibrahim Tariq Rahul Amit Arjun Vikram Sanjay Rajesh Ravi Suresh
  Anil Deepak Rohan Aditya Pradeep Hiroshi Takeshi Kenji Haruto Dmitri Sergei Ivan Igor Alexei
  Vladimir Mikhail Andrei Piotr Pavel Tomasz Krzysztof Marek Jakub Kwame Kofi Chinedu Emeka Tunde
  Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Betty Margaret
  Sandra Ashley Emily Donna Michelle Amanda Dorothy Melissa Deborah Stephanie Rebecca
  Sharon Laura Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma Nicole Helen Samantha
  Katherine Christine Debra Rachel Carolyn Janet Catherine Maria Diane Ruth Julie Olivia Joyce
  Kelly Lauren Christina Joan Evelyn Judith Megan Andrea Cheryl Hannah Jacqueline Martha Gloria
  Teresa Ann Sara Frances Kathryn Janice Abigail Alice Judy Sophia Denise Doris Marilyn Danielle
  Beverly Isabella Theresa Diana Natalie Marie Kayla Alexis Lori Jane Chloe Zoe Mia Ava
  Ella Sophie Lucy Isla Freya Harriet Eleanor Ellie Priya Ananya Aisha Fatima Leila Yasmin Mei
  Sakura Keiko Ingrid Astrid Sigrid Greta Anke Katrin Sabine Ursula Monika Claudia Julia Lena Marta
  Agnieszka Katarzyna Magdalena Olga Natasha Svetlana Irina Tatiana Elena Giulia Francesca Chiara
  Lucia Isabel Pilar Camila Valentina Gabriela Fernanda Beatriz Ines Amelie Camille Chantal
  Nathalie Sylvie Aoife Siobhan Niamh Ciara Joanna Jenny Kate Katie Beth Becky Fiona Gemma Kirsty
  Nadia Tanya Wendy Yvonne Adaeze Ngozi Amara Chioma Priyanka Sunita Anjali Deepika Meera
  Xiaoming Jing Ming Yusuf Bilal Farah Noura Layla Salma Hamza Khalid Rashid Zainab Amina Kavya
`)

/**
 * Capitalised words that are never a person's name in this domain, even after a cue: sentence
 * openers, teams and places in a warehouse, part and tool words, systems, days and months.
 */
const STOP_WORDS = words(`
  The This That These Those There Then Than Thanks Thank Please Note Notes See Check Checked
  Call Called Ask Asked Get Set Put Run Use Used Make Made Take Took Send Sent Move Moved Post
  Posted Void Voided Recompute Reprocess Release Released Correct Corrected Remap Adjust Adjusted
  Resolve Resolved Escalate Escalated Confirm Confirmed Verify Verified Count Counted Recount
  Receive Received Ship Shipped Pick Picked Pack Packed Cancel Cancelled Update Updated Create
  Created Review Reviewed Approve Approved Reject Rejected Hold Held Retry Retried Done Next Now
  After Before Because Since While When Where What Which Who Whom Whose Why How Yes No Not None
  All Any Some Each Every Both Either Neither Our Your Their His Her Its We You They He She It
  And But For Nor Yet Also Only Just Still Again Today Tomorrow Yesterday Tonight Morning
  Afternoon Evening Night Dear Hello Hi Hey Regards Best Cheers Kind Sincerely Team Teams Dept
  Department Desk Help Helpdesk Support Service Services Sales Purchasing Procurement Logistics
  Inventory Finance Accounts Accounting Billing Customer Customers Client Supplier Suppliers
  Vendor Vendors Carrier Carriers Courier Dock Docks Door Bay Aisle Zone Rack Shelf Bin Row
  Level Store Stores Stock Plant Site Office Warehouse Warehouses Yard Depot Hub Branch Main North
  South East West Central Upper Lower Inbound Outbound Receiving Shipping Returns Quality
  Maintenance Production Operations Ops Admin Administrator Manager Supervisor Lead Operator
  Staff Shift Queue Tier Level Goods Order Orders Invoice Invoices Shipment Shipments Receipt
  Receipts Transfer Transfers Adjustment Adjustments Transaction Transactions Reservation
  Reservations Ledger Report Reports Audit Auditor System Systems Integration Integrations Sync
  Import Export Job Jobs Batch Scheduler Robot Bot Agent Server Gateway Webhook Portal Platform
  Database Admin User Users Guest Unknown Someone Nobody Everyone Anyone Other Others Group
  Company Corp Corporation Inc Ltd Limited Llc Gmbh Plc Co Holdings Industries Supply Supplies
  Solutions Trading Partners Logistic Freight Express Mail Post Royal National International
  Global Shopify Magento Odoo Oracle Amazon Google Microsoft Salesforce Dynamics Xero Quickbooks
  Netsuite Ebay Etsy Woocommerce Fedex Maersk Hermes Deere Monday Tuesday Wednesday Thursday Friday
  Saturday Sunday January February March April May June July August September October November
  December Hex Bolt Bolts Nut Nuts Washer Washers Screw Screws Rivet Rivets Cable Cables Tie Ties
  Fuse Fuses Glass Terminal Block Blocks Panel Panels Contactor Circuit Breaker Breakers Nitrile
  Gloves Safety Glasses Vest Ear Plugs Dust Mask Hard Hat Carton Cartons Stretch Film Packing Tape
  Pallet Pallets Label Labels Void Fill Bag Bags Hydraulic Oil Cutting Fluid Degreaser Gear
  Copper Control Earth Wire Granulate Steel Shot Welding Flat Wood Socket Cap Spring Blind Glass
  Led Lamp Bulb Filter Bearing Belt Chain Hose Pipe Valve Pump Motor Key Keys Wrench Knife
  Screwdriver Driver Drill Hammer Saw Pliers Caliper Gauge Meter Tool Tools Kit Box Boxes Case
  Cases Pack Packs Roll Rolls Drum Drums Each Kilo Kilogram Litre Liter Metre Meter Zinc
  Stainless Galvanised Galvanized Black White Red Green Blue Yellow Grey Gray Orange Clear Large
  Small Medium Size Standard Heavy Light Duty Industrial Premium Basic New Old Spare Part Parts
  Item Items Product Products Material Materials Sku Unit Units Quantity Qty Total Sum Balance
  Error Errors Warning Info Debug Pending Posted Status Source Reason Summary Finding Findings
  Rule Rules Root Cause Fix Fixed Step Steps Tool Thought Action Observation Final Answer Result
  Results Example Examples Test Tests Sample Samples Draft Policy Procedure Sop Manual Guide
  Mr Mrs Ms Mx Miss Dr Prof Herr Frau Mme Mlle Sr Sra San Santa Santo São Sao St Saint Ste Fort Port
  Lake Mount Mt Cape Los Las Villa Porto Puerto
`)

/** Nouns that, right after a first name, mean a product or tool is meant ("Allen key", "Lucas oil"). */
const PRODUCT_NOUNS = words(`
  key keys wrench wrenches knife knives screwdriver head bit bits driver blade blades bolt bolts
  socket sockets cable valve pump clamp fitting fittings jack pin pins oil grease fluid glue kit
  tool tools brand model series type grade size edition plug filter bearing belt chain hose pipe
  wire screw screws nut nuts washer washers
`)

/** Brands named after a person: "John Deere parts" names no one. */
const PERSON_NAMED_BRANDS = [
  'John Deere',
  'Johnson Controls',
  'Ralph Lauren',
  'Calvin Klein',
  'Tommy Hilfiger',
  'Hugo Boss',
  'Sara Lee',
  'Ann Taylor',
  'Jimmy Choo',
]

const SYNTHETIC_GIVEN_NAMES = [
  'Avelin',
  'Bryndle',
  'Corwen',
  'Dellamy',
  'Elsmere',
  'Fennick',
  'Garrow',
  'Halvard',
  'Isbeth',
  'Jorunn',
  'Kestra',
  'Lisandre',
  'Maelis',
  'Nollan',
  'Orlenne',
  'Pellam',
  'Quenby',
  'Rhoswen',
  'Seftona',
  'Tamsell',
  'Ulvane',
  'Vessaly',
  'Wynsor',
  'Ysolde',
  'Zarevo',
  'Anwell',
  'Brisander',
  'Caddow',
  'Dorvenne',
  'Emmerick',
  'Faylen',
  'Gwendry',
] as const

const SYNTHETIC_SURNAMES = [
  'Ashcombe',
  'Brackenridge',
  'Colwynne',
  'Dunmere',
  'Everleigh',
  'Fairweather',
  'Gallowmere',
  'Hartwelle',
  'Inglewood',
  'Juniperry',
  'Kingsmere',
  'Larkspur',
  'Merriwether',
  'Northcote',
  'Oakhurst',
  'Pennywhistle',
  'Quillfeather',
  'Ravensworth',
  'Silverthorne',
  'Thistlewood',
  'Underhay',
  'Vantreeck',
  'Westerbrook',
  'Yarrowby',
  'Zelborne',
  'Amberleigh',
  'Bramblecote',
  'Cindermoss',
  'Dapplewood',
  'Elderhaven',
  'Foxenden',
  'Glimmerford',
] as const

const SYNTHETIC_NAMES = new Set<string>([...SYNTHETIC_GIVEN_NAMES, ...SYNTHETIC_SURNAMES])

/** The area codes of synthetic phone numbers; the line is always 555-01xx, which is reserved for fiction. */
const SYNTHETIC_AREA_CODES = [
  '202',
  '206',
  '212',
  '303',
  '305',
  '312',
  '404',
  '415',
  '503',
  '512',
  '602',
  '617',
  '702',
  '713',
  '718',
  '919',
] as const

// ---------------------------------------------------------------------------------------------
// Emails

const EMAIL_PATTERN = new RegExp(String.raw`(?<![A-Za-z0-9._%+-])(?:${EMAIL.source})(?![A-Za-z0-9-])`, 'g')

/** `.invalid` is reserved (RFC 2606): no mailbox there can belong to anyone, pseudonyms included. */
function isReservedEmail(email: string): boolean {
  return /\.invalid$/i.test(email)
}

// ---------------------------------------------------------------------------------------------
// Phone numbers

/** The audit log's shapes, with stricter edges: not inside identifiers, IP addresses or decimal runs. */
const PHONE_PATTERN = new RegExp(
  PHONE_SHAPES.map((shape) => String.raw`(?<![\w/.+-])(?:${shape})(?![\w/]|[.-]\d)`).join('|'),
  'g',
)

/** A number introduced as one ("tel: 555 123 4567", "call me on 07700 900123"), whatever its grouping. */
const PHONE_AFTER_CUE =
  /\b(?:phone|tel|telephone|mobile|mob|cell|cellphone|fax|whatsapp|call(?:ed|ing)?(?:\s+(?:me|him|her|them|us))?\s+(?:on|at)|ring(?:\s+(?:me|him|her|them|us))?\s+on|reach(?:ed)?(?:\s+(?:me|him|her|them|us))?\s+(?:on|at))\b\s*(?:(?:no|nr|number)\b\.?)?\s*[:#.]{0,2}\s*(?<number>\+?\(?\d{1,5}\)?(?:[ .-]?\(?\d{1,6}\)?){1,6})(?![\w/]|[.-]\d)/dgi

function digitsOf(phone: string): string {
  return phone.replace(/\D/g, '')
}

/** 555-0100 to 555-0199 are reserved for fiction in every North American area code. */
function isFictionalPhone(digits: string): boolean {
  return /^(?:1?\d{3})?55501\d{2}$/.test(digits)
}

/**
 * A fictional number as written ("+1 202-555-0147", "(312) 555-0100"): set aside before the
 * other shapes run, so that digits after it ("+1 202-555-0147 12 times") cannot join it into a
 * longer number that would no longer look fictional.
 */
const FICTIONAL_PHONE = /(?<![\w+])(?:\+1[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?555[\s.-]?01\d{2}(?![\w])/g

/**
 * The number a match really is: without a closing parenthesis that belongs to the text around it
 * ("(+44 20 7946 0958)"), and without the digit groups that follow it when the match ran on into
 * them ("+44 20 7946 0958 12 34 56": at most 15 digits). Undefined when no number is left.
 */
function fitPhone(value: string): string | undefined {
  let fitted = value
  if (fitted.endsWith(')') && fitted.split(')').length > fitted.split('(').length) fitted = fitted.slice(0, -1)
  while (digitsOf(fitted).length > 15) {
    const lastGroup = fitted.search(/\s+\S*$/)
    if (lastGroup <= 0) return undefined
    fitted = fitted.slice(0, lastGroup)
  }
  return fitted
}

function isPlausiblePhone(value: string, introduced: boolean): boolean {
  const digits = digitsOf(value)
  if (digits.length < 7 || digits.length > 15) return false
  // 12.500.000 or 1-250-000 are thousands, not a phone number, unless the text said it is one.
  if (!introduced && !/[+(]/.test(value)) {
    const [first, ...rest] = value.split(/[\s.-]+/)
    if (rest.length >= 2 && /^[1-9]\d{0,2}$/.test(first) && rest.every((group) => group.length === 3)) return false
  }
  return true
}

// ---------------------------------------------------------------------------------------------
// Names

/** The honorifics, place prefixes and cues below, and the shape of a name, as regular expressions. */
interface NamePatterns {
  /** A capitalised word that is not part of an identifier, an email or a camelCase token. */
  candidate: RegExp
  /** The next word of a full name: one space, optional particles ("van der"), a capitalised word. */
  nextNameWord: RegExp
  nextWord: RegExp
  capitalisedCues: RegExp
  wordCues: RegExp
}

const HONORIFIC = String.raw`(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Herr|Frau|Mme|Mlle|Sr|Sra)\.?`
/** San Jose, Santa Maria, St Helen, Fort William, Port Elizabeth, Lake Victoria: a place, not a person. */
const PLACE_PREFIX = String.raw`(?:San|Santa|Santo|São|Sao|St|Saint|Ste|Fort|Port|Lake|Mount|Mt|Cape|Los|Las|Villa|Porto|Puerto)\.?`
/** Words after which a capitalised word is a person, not a thing: a role label or "<done> by". */
const STRONG_CUE = String.raw`(?:contact(?:\s+person)?|attn|attention|cc|owner|assignee|requester|requestor|approver|buyer|planner|picker|packer|operator|storekeeper|clerk|technician|supervisor|manager|signed)\s*:\s*|(?:approved|requested|reported|raised|signed(?:\s+off)?|counted|recounted|checked|confirmed|authori[sz]ed|verified|witnessed|keyed|entered|submitted)\s+by\s+|(?:assigned|reassigned|escalated|handed(?:\s+over)?|forwarded)\s+to\s+`
/** Weaker cues: enough only for an initial and a surname ("per J. Smith"). */
const WEAK_CUE = String.raw`(?:per|by|from|with|to|ask|asked|tell|told|call|called|email|emailed|phoned|contacted|thanks|via|cc|and)\s*[:,]?\s+`
const PARTICLES = String.raw`(?:van|von|der|den|de|del|della|di|da|du|dos|das|la|le|bin|ibn|al|el|ter|ten)`

/**
 * The same patterns in two builds: Unicode property classes for text with any non-ASCII
 * character, and plain ASCII classes, which match the same on ASCII text and scan it about
 * fifteen times faster (V8 cannot skip ahead over \p{…} classes).
 */
function namePatterns(unicode: boolean): NamePatterns {
  const [upper, lower, letter, number, mark] = unicode
    ? [String.raw`\p{Lu}`, String.raw`\p{Ll}`, String.raw`\p{L}`, String.raw`\p{N}`, String.raw`\p{M}`]
    : ['A-Z', 'a-z', 'A-Za-z', '0-9', '']
  const flags = unicode ? 'u' : ''
  // "McDonald", "MacLeod", "O'Brien", "D'Angelo", "Smith-Jones".
  const part = String.raw`[${upper}](?:c[${upper}]|ac[${upper}]|['’][${upper}])?[${lower}${mark}]+`
  const word = String.raw`${part}(?:-${part})*`
  const wordEnd = String.raw`(?![${letter}${number}_@]|['’][${letter}]{2}|[.-][${letter}${number}])`
  return {
    candidate: new RegExp(String.raw`${word}${wordEnd}`, `g${flags}`),
    nextNameWord: new RegExp(String.raw`[ \t](?:${PARTICLES}[ \t]){0,2}(${word})${wordEnd}`, `y${flags}`),
    nextWord: new RegExp(String.raw`\s+([${letter}]+)`, `y${flags}`),
    capitalisedCues: new RegExp(
      String.raw`(?<![${letter}${number}])(?:(?<honorific>${HONORIFIC})|(?<place>${PLACE_PREFIX}))[ \t]+`,
      `g${flags}`,
    ),
    wordCues: new RegExp(
      String.raw`(?<![${letter}${number}])(?:(?<strong>${STRONG_CUE})|(?<weak>${WEAK_CUE}))`,
      `gi${flags}`,
    ),
  }
}

const ASCII_NAME_PATTERNS = namePatterns(false)
const UNICODE_NAME_PATTERNS = namePatterns(true)
const NON_ASCII = /[^\x00-\x7F]/g

/** Does `text` hold a letter, digit or mark outside ASCII (not just "—", "→" or "’")? Then the ASCII patterns would read it differently. */
function hasNonAsciiWordCharacter(text: string): boolean {
  NON_ASCII.lastIndex = 0
  for (let found = NON_ASCII.exec(text); found; found = NON_ASCII.exec(text)) {
    if (/[\p{L}\p{N}\p{M}]/u.test(String.fromCodePoint(text.codePointAt(found.index)!))) return true
  }
  return false
}

/** What may not come right before a name: a letter, a digit or a joiner of identifiers and addresses. */
const NOT_BEFORE_NAME = /[\p{L}\p{N}_@.'’/\\-]/u
const INITIALS_BEFORE = /(?<![\p{L}\p{N}])(?:\p{Lu}\.[ \t]?){1,2}$/u

type Cue = 'honorific' | 'place' | 'strong' | 'weak'

/** Where each cue in `text` ends (the position of the word it introduces); words inside an address or a number are no cue. */
function cuesOf(
  text: string,
  patterns: NamePatterns,
  isFree: (start: number, end: number) => boolean,
): Map<number, Cue> {
  const cues = new Map<number, Cue>()
  for (const match of text.matchAll(patterns.capitalisedCues)) {
    const end = match.index + match[0].length
    if (isFree(match.index - 1, end)) cues.set(end, match.groups!.honorific ? 'honorific' : 'place')
  }
  for (const match of text.matchAll(patterns.wordCues)) {
    const end = match.index + match[0].length
    if (!cues.has(end) && isFree(match.index - 1, end)) cues.set(end, match.groups!.strong ? 'strong' : 'weak')
  }
  return cues
}

/** The last word of an honorific, a place prefix or a strong cue (or a colon before the word): only then can a cue end here. */
const CUE_LAST_WORDS = new Set([
  'by',
  'to',
  'By',
  'To',
  'BY',
  'TO',
  ...[HONORIFIC, PLACE_PREFIX].flatMap((pattern) => pattern.replace(/[^\p{L}|]/gu, '').split('|')),
])
const WORD_BEFORE = /(\p{L}+)\.?[ \t]+$/u

/** Cheap test that spares most capitalised words the search for cues: could one end at `position`? */
function mayFollowCue(text: string, position: number): boolean {
  if (position === 0 || !/[\s:]/.test(text[position - 1])) return false
  const before = text.slice(Math.max(0, position - 24), position)
  if (/:\s*$/.test(before)) return true
  const word = WORD_BEFORE.exec(before)
  return word !== null && CUE_LAST_WORDS.has(word[1])
}

const MAX_NAME_WORDS = 3
const PERSON_NAMED_BRAND_STARTS = new Set(PERSON_NAMED_BRANDS.map((brand) => brand.split(' ')[0]))

function withoutAccents(word: string): string {
  return /^[\x00-\x7F]*$/.test(word) ? word : word.normalize('NFD').replace(/\p{M}/gu, '')
}

function isKnownFirstName(word: string): boolean {
  const plain = withoutAccents(word)
  return FIRST_NAMES.has(plain) || (plain.includes('-') && FIRST_NAMES.has(plain.split('-')[0]))
}

function isStopWord(word: string): boolean {
  return STOP_WORDS.has(word) || (word.includes('-') && STOP_WORDS.has(word.split('-')[0]))
}

/** Could this word be part of a real person's name (not a stop word, not one of our pseudonyms)? */
function isNameWord(word: string): boolean {
  return !isStopWord(word) && !SYNTHETIC_NAMES.has(word)
}

function findNames(text: string, isFree: (start: number, end: number) => boolean): PiiMatch[] {
  const matches: PiiMatch[] = []
  let cues: Map<number, Cue> | undefined
  let consumedUpTo = 0
  const patterns = hasNonAsciiWordCharacter(text) ? UNICODE_NAME_PATTERNS : ASCII_NAME_PATTERNS
  for (const candidate of text.matchAll(patterns.candidate)) {
    const wordStart = candidate.index
    const first = candidate[0]
    if (wordStart < consumedUpTo || (wordStart > 0 && NOT_BEFORE_NAME.test(text[wordStart - 1])) || !isNameWord(first))
      continue
    if (PERSON_NAMED_BRAND_STARTS.has(first)) {
      const brand = PERSON_NAMED_BRANDS.find(
        (name) =>
          text.startsWith(name, wordStart) &&
          !/[\p{L}\p{N}]/u.test(text[wordStart + name.length] ?? '') &&
          isFree(wordStart, wordStart + name.length),
      )
      if (brand) {
        consumedUpTo = wordStart + brand.length
        continue
      }
    }
    // Can a name start here? After an honorific or a strong cue, any name-like word; an initial
    // ("J. Smith") after any cue; otherwise only a known first name, and not in a place name.
    let start = wordStart
    const initials =
      text[wordStart - 2] === '.' ? INITIALS_BEFORE.exec(text.slice(Math.max(0, wordStart - 8), wordStart)) : null
    const cueEnd = initials ? wordStart - initials[0].length : wordStart
    const cue =
      initials || mayFollowCue(text, cueEnd) ? (cues ??= cuesOf(text, patterns, isFree)).get(cueEnd) : undefined
    let knownFirstNameOnly = false
    if (initials) {
      if (cue !== 'honorific' && cue !== 'strong' && cue !== 'weak') continue
      start = wordStart - initials[0].length
    } else if (cue !== 'honorific' && cue !== 'strong') {
      if (cue === 'place' || !isKnownFirstName(first)) continue
      knownFirstNameOnly = true
    }
    // Further words of the same name: "Jane Doe", "Pieter van der Berg".
    let end = wordStart + first.length
    let count = 1
    while (count < MAX_NAME_WORDS) {
      patterns.nextNameWord.lastIndex = end
      const next = patterns.nextNameWord.exec(text)
      if (
        !next ||
        !isNameWord(next[1]) ||
        !isFree(patterns.nextNameWord.lastIndex - next[1].length - 1, patterns.nextNameWord.lastIndex + 1)
      )
        break
      end = patterns.nextNameWord.lastIndex
      count++
    }
    if (knownFirstNameOnly && count === 1) {
      // A first name alone followed by a product noun is a product: "Allen key", "Lucas oil".
      patterns.nextWord.lastIndex = end
      const next = patterns.nextWord.exec(text)
      if (next && PRODUCT_NOUNS.has(next[1].toLowerCase()) && isFree(end, patterns.nextWord.lastIndex + 1)) continue
    }
    // Not even touching an address or a number: "José0049 30 1234567" must read the same once the number is a pseudonym.
    if (!isFree(start - 1, end + 1)) continue
    matches.push({kind: 'name', start, end, value: text.slice(start, end)})
    consumedUpTo = end
  }
  return matches
}

// ---------------------------------------------------------------------------------------------
// Detection

/**
 * Every email address, phone number and person name in `text`, sorted by position and never
 * overlapping (an email wins over a name or number inside it). Reserved addresses (`.invalid`)
 * and numbers reserved for fiction (555-01xx) are not PII and are not reported.
 */
export function findPii(text: string): PiiMatch[] {
  const taken: Array<[number, number]> = []
  const isFree = (start: number, end: number) => taken.every(([from, to]) => end <= from || start >= to)
  const found: PiiMatch[] = []
  const take = (match: PiiMatch, report: boolean) => {
    if (!isFree(match.start, match.end)) return
    taken.push([match.start, match.end])
    if (report) found.push(match)
  }

  if (text.includes('@')) {
    for (const email of text.matchAll(EMAIL_PATTERN)) {
      take(
        {kind: 'email', start: email.index, end: email.index + email[0].length, value: email[0]},
        !isReservedEmail(email[0]),
      )
    }
  }
  if (/\d/.test(text)) {
    if (text.includes('555'))
      for (const fictional of text.matchAll(FICTIONAL_PHONE))
        take(
          {kind: 'phone', start: fictional.index, end: fictional.index + fictional[0].length, value: fictional[0]},
          false,
        )
    // Whether a number is found must not depend on what follows it, since that may be replaced by
    // a pseudonym: a match that runs into an address or a number already found stops before it,
    // and a match that is not a phone number after all is searched again from its next character.
    for (const [pattern, introduced] of [
      [PHONE_PATTERN, false],
      [PHONE_AFTER_CUE, true],
    ] as const) {
      pattern.lastIndex = 0
      for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
        const [start, matchEnd] = introduced
          ? match.indices!.groups!.number
          : [match.index, match.index + match[0].length]
        const clippedEnd = Math.min(
          matchEnd,
          ...taken.filter(([from, to]) => to > start && from < matchEnd).map(([from]) => from),
        )
        const value = clippedEnd > start ? fitPhone(text.slice(start, clippedEnd).replace(/[\s.(-]+$/, '')) : undefined
        const end = start + (value?.length ?? 0)
        if (value !== undefined && isPlausiblePhone(value, introduced) && isFree(start, end)) {
          take({kind: 'phone', start, end, value}, !isFictionalPhone(digitsOf(value)))
          pattern.lastIndex = end
        } else {
          pattern.lastIndex = match.index + 1
        }
      }
    }
  }
  for (const name of findNames(text, isFree)) take(name, true)
  return found.sort((a, b) => a.start - b.start)
}

// ---------------------------------------------------------------------------------------------
// Pseudonyms

/**
 * A copy of `text` that shares no memory with the string it was cut from. V8 keeps substrings as
 * views of their parent, so a short value kept in a cache or a report would keep a whole
 * megabyte-sized read chunk alive; callers keep copies instead.
 */
export function detachedCopy(text: string): string {
  return text.length < 16 ? text : Buffer.from(text, 'utf16le').toString('utf16le')
}

/** How often replace() looks again after replacing; two looks are almost always enough. */
const MAX_LOOKS = 4

/** Where a match in the text with `changes` applied starts in the original; undefined if it overlaps a replacement. */
function originalPosition(changes: readonly PiiChange[], match: PiiMatch): number | undefined {
  let shift = 0
  for (const change of changes) {
    const start = change.start + shift
    const end = start + change.replacement.length
    if (end <= match.start) {
      shift += change.replacement.length - (change.end - change.start)
      continue
    }
    if (start < match.end) return undefined
    break
  }
  return match.start - shift
}

function applyChanges(text: string, changes: readonly PiiChange[]): string {
  let result = ''
  let position = 0
  for (const change of changes) {
    result += text.slice(position, change.start) + change.replacement
    position = change.end
  }
  return result + text.slice(position)
}

/** Not a secret: it only makes pseudonyms stable. Pass your own key to make them unlinkable by a dictionary. */
export const DEFAULT_PSEUDONYM_KEY = 'invagent-scrub-v1'

/** Entries in each of the Pseudonymizer's caches, and the longest string whose result is kept: memory stays bounded. */
const CACHE_LIMIT = 20_000
const MEMO_MAX_LENGTH = 160
const NO_CHANGES: readonly PiiChange[] = Object.freeze([])

/**
 * Replaces PII with pseudonyms derived from a keyed hash (HMAC-SHA256) of the value: the same
 * value always gets the same pseudonym, in every line, file and run that uses the same key.
 * Emails become `person-<hex>@example.invalid`, phone numbers `+1 <area>-555-01xx` (reserved for
 * fiction), and each word of a name a synthetic given name or surname, so "Jane Doe", "Jane" and
 * "Mr. Doe" stay recognisably the same person. Distinct values can share a pseudonym (1,600
 * phone pseudonyms, 32 given names × 32 surnames), as with any short pseudonym.
 */
export class Pseudonymizer {
  private readonly key: string
  private readonly cache = new Map<string, string>()
  private readonly replacements = new Map<string, {text: string; changes: readonly PiiChange[]}>()

  constructor(options: {key?: string} = {}) {
    this.key = options.key ?? DEFAULT_PSEUDONYM_KEY
  }

  /** The pseudonym of one detected value. */
  pseudonym(kind: PiiKind, value: string): string {
    const cacheKey = `${kind}\u0000${value}`
    const cached = this.cache.get(cacheKey)
    if (cached !== undefined) return cached
    const pseudonym = kind === 'email' ? this.email(value) : kind === 'phone' ? this.phone(value) : this.name(value)
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear()
    this.cache.set(detachedCopy(cacheKey), pseudonym)
    return pseudonym
  }

  /** `text` with every match of `findPii` replaced, and what was replaced (positions in the original text). */
  replace(text: string): {text: string; changes: PiiChange[]} {
    // Datasets repeat their short strings (instructions, templated thoughts): each is scanned once.
    const memoise = text.length <= MEMO_MAX_LENGTH
    const memoised = memoise ? this.replacements.get(text) : undefined
    if (memoised) return {text: memoised.text, changes: memoised.changes.slice()}
    // What is memoised must not point into the caller's string (see detachedCopy).
    if (memoise) text = detachedCopy(text)
    const replaced = this.replaceUntilClean(text)
    if (memoise) {
      if (this.replacements.size >= CACHE_LIMIT) this.replacements.clear()
      this.replacements.set(text, replaced)
    }
    return {text: replaced.text, changes: replaced.changes.slice()}
  }

  /**
   * Replaces what findPii reports, then looks again: a pseudonym changes the text around the
   * words next to it, and rarely that reveals PII the first look could not see ("+12000 (312)"
   * running into a number that was then replaced). What the next look finds lies in text not yet
   * replaced (pseudonyms are never detected), so its position in the original is known. The
   * result is one findPii reports nothing in, which makes scrubbing idempotent.
   */
  private replaceUntilClean(text: string): {text: string; changes: readonly PiiChange[]} {
    let changes: PiiChange[] = []
    let current = text
    for (let look = 0; look < MAX_LOOKS; look++) {
      const matches = findPii(current)
      if (matches.length === 0) break
      const found: PiiChange[] = []
      for (const match of matches) {
        const start = originalPosition(changes, match)
        if (start === undefined) continue
        found.push({
          ...match,
          start,
          end: start + (match.end - match.start),
          replacement: this.pseudonym(match.kind, match.value),
        })
      }
      if (found.length === 0) break
      changes = [...changes, ...found].sort((a, b) => a.start - b.start)
      current = applyChanges(text, changes)
    }
    return changes.length === 0 ? {text, changes: NO_CHANGES} : {text: current, changes}
  }

  private digest(label: string, value: string): Buffer {
    return createHmac('sha256', this.key).update(`${label}\u0000${value}`).digest()
  }

  private email(value: string): string {
    return `person-${this.digest('email', value.toLowerCase()).toString('hex').slice(0, 6)}@example.invalid`
  }

  private phone(value: string): string {
    let digits = digitsOf(value)
    if (value.trimStart().startsWith('00')) digits = digits.slice(2)
    // +1 415 555 2671 and (415) 555-2671 are the same North American number.
    if (digits.length === 11 && digits.startsWith('1')) digits = digits.slice(1)
    const hash = this.digest('phone', digits)
    const area = SYNTHETIC_AREA_CODES[hash[0] % SYNTHETIC_AREA_CODES.length]
    return `+1 ${area}-555-01${String(hash.readUInt16BE(1) % 100).padStart(2, '0')}`
  }

  /** Word by word: the last word is a surname, earlier ones given names; a lone first name stays a given name. */
  private name(value: string): string {
    const parts = value.split(/(\s+)/)
    const wordIndexes = parts.flatMap((part, index) => (/\S/.test(part) ? [index] : []))
    const last = wordIndexes.at(-1)!
    return parts
      .map((part, index) => {
        if (!/\S/.test(part)) return part
        if (/^\p{Lu}\.$/u.test(part)) return `${String.fromCharCode(65 + (this.digest('initial', part)[0] % 26))}.`
        if (/^\p{Ll}+$/u.test(part)) return part // a particle: van, de, bin
        const asSurname = index === last && !(wordIndexes.length === 1 && isKnownFirstName(part))
        const hash = this.digest(asSurname ? 'surname' : 'given', part).readUInt32BE(0)
        return asSurname
          ? SYNTHETIC_SURNAMES[hash % SYNTHETIC_SURNAMES.length]
          : SYNTHETIC_GIVEN_NAMES[hash % SYNTHETIC_GIVEN_NAMES.length]
      })
      .join('')
  }
}

/** The synthetic name lists, for tests that check they are never detected. */
export const SYNTHETIC_NAME_LISTS = {given: SYNTHETIC_GIVEN_NAMES, surnames: SYNTHETIC_SURNAMES} as const
