import {canonicalUnit} from '../inventory/units.js'

/**
 * What the rules playbook reads out of free-text integration messages. Keyword patterns, not a
 * language model: it covers the phrasings integrations commonly use, and says "unrecognized"
 * for an error it cannot place, so the playbook escalates instead of guessing.
 */
export type MessageClass =
  | 'invoiced'
  | 'redelivery'
  | 'job_rerun'
  | 'unknown_sku'
  | 'bad_uom'
  | 'transient'
  | 'uom_evidence'
  | 'unrecognized'
  | 'info'

const PATTERNS: Array<[MessageClass, RegExp]> = [
  ['invoiced', /\binvoice|\bbilled\b|\bcharged\b|dispatched|shipment confirmed|carrier label/],
  ['redelivery', /redeliver|delivered twice|received twice|duplicate delivery|second time|delivered again/],
  ['job_rerun', /ran twice|re-?imported|replayed|retriggered|ran again|posted again|job .*twice/],
  [
    'unknown_sku',
    /\b(sku|item|material|part)\b[^.;]*\b(not found|unknown|does not exist|no such)|unknown item|no part with sku/,
  ],
  [
    'bad_uom',
    /\b(unit|uom|measurement)\b[^.;]*\b(not recogni[sz]ed|invalid|unknown|not configured)|unknown unit|invalid uom/,
  ],
  [
    'transient',
    /timeout|timed out|did not answer|unavailable|\b503\b|\b429\b|rate limit|deadlock|connection reset|will retry|retry scheduled|backing off/,
  ],
]

export function classifyMessage(message: string, level: string): MessageClass {
  const text = message.toLowerCase()
  for (const [kind, pattern] of PATTERNS) if (pattern.test(text)) return kind
  if (unitEvidence(message)) return 'uom_evidence'
  return level === 'error' || level === 'warn' ? 'unrecognized' : 'info'
}

/**
 * A quantity stated by the source document with a unit, as in "counted 24 EA at dock" or
 * "quantity 5 each". Only messages that describe a count in the source qualify.
 */
export function unitEvidence(message: string): {qty: number; uom: string} | undefined {
  if (!/\b(count(ed)?|quantity|picked|scanned|each count|packing slip|source document)\b/i.test(message))
    return undefined
  for (const match of message.matchAll(/\b(\d+)\s+([A-Za-z]+)\b/g)) {
    const uom = canonicalUnit(match[2])
    if (uom) return {qty: Number(match[1]), uom}
  }
  return undefined
}
