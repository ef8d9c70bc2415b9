import {createHash} from 'node:crypto'

import {detachedCopy, findPii, type PiiKind} from '../dataset/pii.js'
import {redactSecrets} from './secrets.js'

/**
 * PII redaction for everything that leaves the process as a log line. The detector is the one
 * `dataset scrub` uses (emails, phone numbers, person names), so what a dataset may not hold a log
 * may not hold either; here a match becomes a marker instead of a pseudonym. Identifiers invagent
 * itself uses (P-000123, T-…, SO-2026-0000123/1, dates) and runs of quantities are left alone.
 * findPii is linear in the length of the text, so a megabyte-long integration message costs
 * milliseconds, not minutes spent holding the database.
 */
const MARKERS: Record<PiiKind, string> = {email: '[redacted-email]', phone: '[redacted-phone]', name: '[redacted-name]'}

/** Nothing any detector looks for: no '@', no digit, no capital letter. Most log strings are like this. */
const CANNOT_HOLD_PII = /^[^@0-9A-Z\u0080-\uFFFF]*$/

/**
 * Log lines repeat their short strings (tool names, ids, statuses, templated thoughts): each is
 * scanned once. Bounded, so a long run cannot grow it without limit.
 */
const MEMO_MAX_LENGTH = 160
const MEMO_LIMIT = 50_000
const memo = new Map<string, string>()

export function redactText(text: string): string {
  if (CANNOT_HOLD_PII.test(text)) return text
  if (text.length > MEMO_MAX_LENGTH) return redactUncached(text)
  let redacted = memo.get(text)
  if (redacted === undefined) {
    redacted = redactUncached(text)
    if (memo.size >= MEMO_LIMIT) memo.clear()
    // A key cut from a large string would keep all of it alive (see detachedCopy).
    const key = detachedCopy(text)
    memo.set(key, redacted === text ? key : detachedCopy(redacted))
  }
  return redacted
}

function redactUncached(text: string): string {
  const matches = findPii(text)
  if (matches.length === 0) return text
  let result = ''
  let position = 0
  for (const match of matches) {
    result += text.slice(position, match.start) + MARKERS[match.kind]
    position = match.end
  }
  return result + text.slice(position)
}

/**
 * The longest string a log line keeps. An integration message can be megabytes long; the log keeps
 * its beginning, its length and its digest (enough to match it to the source), and its line is
 * written in bounded time whatever the message holds.
 */
export const LOGGED_STRING_LIMIT = 64 * 1024

/** `text` cut to LOGGED_STRING_LIMIT at a space where there is one near the limit, with what was left out. */
export function boundForLog(text: string): string {
  if (text.length <= LOGGED_STRING_LIMIT) return text
  const space = text.lastIndexOf(' ', LOGGED_STRING_LIMIT)
  const cut = space > LOGGED_STRING_LIMIT - 256 ? space : LOGGED_STRING_LIMIT
  const digest = createHash('sha256').update(text).digest('hex')
  return `${text.slice(0, cut)} … [${text.length - cut} more characters of ${text.length}, sha256 ${digest}]`
}

/**
 * Deep copy with every string, and every object key, bounded (see boundForLog) and redacted: PII,
 * and the `secrets` given (the environment's, see secretValues).
 */
export function redactValue<T>(value: T, secrets: readonly string[] = []): T {
  const text = (raw: string) =>
    redactText(secrets.length > 0 ? redactSecrets(boundForLog(raw), secrets) : boundForLog(raw))
  const copy = (item: unknown): unknown => {
    if (typeof item === 'string') return text(item)
    if (Array.isArray(item)) return item.map(copy)
    if (item !== null && typeof item === 'object') {
      const result: Record<string, unknown> = {}
      for (const [key, entry] of Object.entries(item)) result[text(key)] = copy(entry)
      return result
    }
    return item
  }
  return copy(value) as T
}

/**
 * `canonicalJson(redactValue(value, secrets))` in one native JSON.stringify pass instead of two deep
 * copies: what the audit log hashes and writes for every line. Strings and keys are bounded and
 * redacted; an object is copied only when its keys are out of order or one of them changes. A key
 * that redacts to the same text as an earlier one takes its place, as in an object built key by key.
 * (A value with toJSON, such as a Date, is written as what toJSON returns.)
 */
const PROTO_KEY = '__proto__'

export function redactedCanonicalJson(value: unknown, secrets: readonly string[] = []): string {
  const text = (raw: string) =>
    redactText(secrets.length > 0 ? redactSecrets(boundForLog(raw), secrets) : boundForLog(raw))
  const replacer = (_key: string, item: unknown): unknown => {
    if (typeof item === 'string') return text(item)
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return item
    const keys = Object.keys(item)
    let canonical = true
    for (let index = 0; index < keys.length && canonical; index++)
      canonical =
        (index === 0 || keys[index - 1] < keys[index]) && keys[index] !== PROTO_KEY && text(keys[index]) === keys[index]
    if (canonical) return item
    const entries = new Map<string, unknown>()
    for (const key of keys) {
      const redactedKey = text(key)
      entries.delete(redactedKey)
      // An own "__proto__" (JSON.parse makes one) would set the prototype of a copy, not a key:
      // it is left out, as copying into a plain object always did, so the line verifies.
      if (redactedKey !== PROTO_KEY) entries.set(redactedKey, (item as Record<string, unknown>)[key])
    }
    const sorted: Record<string, unknown> = {}
    for (const key of [...entries.keys()].sort()) sorted[key] = entries.get(key)
    return sorted
  }
  return JSON.stringify(value, replacer) ?? 'null'
}
