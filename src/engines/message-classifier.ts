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

/*
 * A gap between two keywords is bounded ({0,120}, not *): an unbounded gap is searched from every
 * keyword to the end of the message, which is quadratic in a message that repeats its keyword.
 */
const PATTERNS: Array<[MessageClass, RegExp]> = [
  ['invoiced', /\binvoice|\bbilled\b|\bcharged\b|dispatched|shipment confirmed|carrier label/],
  ['redelivery', /redeliver|delivered twice|received twice|duplicate delivery|second time|delivered again/],
  ['job_rerun', /ran twice|re-?imported|replayed|retriggered|ran again|posted again|job [^\n]{0,80}twice/],
  [
    'unknown_sku',
    new RegExp(
      String.raw`\b(sku|item|material|part)\b[^.;]{0,120}\b(not found|` +
        String.raw`unknown|does not exist|no such)|unknown item|` +
        String.raw`no part with sku`,
    ),
  ],
  [
    'bad_uom',
    new RegExp(
      String.raw`\b(unit|uom|measurement)\b[^.;]{0,120}\b(not recogni[sz]ed|` +
        String.raw`invalid|unknown|not configured)|unknown unit|` +
        String.raw`invalid uom`,
    ),
  ],
  [
    'transient',
    new RegExp(
      String.raw`timeout|timed out|did not answer|unavailable|` +
        String.raw`\b503\b|\b429\b|rate limit|deadlock|connection reset|` +
        String.raw`will retry|retry scheduled|backing off`,
    ),
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
