import {FingerprintTable} from './fingerprint-table.js'
import {locatePointer, toPointer} from './json-text.js'
import {findPii} from './pii.js'

/*
 * The part of validating a line that needs only its text: fingerprints for the duplicate checks
 * and the PII scan. Together they cost about as much as parsing the line, so on large files
 * they run in a worker thread (line-scan-worker.ts) while the main thread parses and checks the
 * next lines; on small files they run inline. Same function either way.
 */

export interface LineScanInput {
  text: string
  /** The id's `"id":"…"` text, left out of the content fingerprint. */
  skipFrom: number
  skipTo: number
  /** The example's id, fingerprinted for the duplicate-id check. */
  id?: string
}

export interface PiiFinding {
  column: number
  message: string
  pointer: string
}

export interface LineScanResult {
  content: [number, number]
  id?: [number, number]
  pii: PiiFinding[]
}

/** Every string in a value (object keys too) with its JSON pointer. */
function* strings(value: unknown, path: Array<string | number> = []): Generator<[string, string, boolean]> {
  if (typeof value === 'string') yield [toPointer(path), value, false]
  else if (Array.isArray(value)) for (const [index, item] of value.entries()) yield* strings(item, [...path, index])
  else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      yield [toPointer(path), key, true]
      yield* strings(item, [...path, key])
    }
  }
}

const KIND_WORDS = {email: 'an email address', phone: 'a phone number', name: "a person's name"} as const

/** PII in any field of a line of valid JSON, each with the column where it starts. */
export function piiOfLine(text: string): PiiFinding[] {
  if (findPii(text).length === 0) return []
  const findings: PiiFinding[] = []
  for (const [pointer, string, isKey] of strings(JSON.parse(text))) {
    for (const match of findPii(string)) {
      const at = locatePointer(text, pointer, isKey ? string : undefined)
      findings.push({
        column: at + (isKey ? 1 : 2) + match.start,
        pointer,
        message: `${KIND_WORDS[match.kind]} in ${pointer || '(root)'}${isKey ? ' (a property name)' : ''} — scrub it: invagent dataset scrub FILE`,
      })
    }
  }
  return findings
}

export function scanLine(input: LineScanInput): LineScanResult {
  return {
    content: FingerprintTable.fingerprint(input.text, input.skipFrom, input.skipTo),
    ...(input.id === undefined ? {} : {id: FingerprintTable.fingerprint(input.id)}),
    pii: piiOfLine(input.text),
  }
}
