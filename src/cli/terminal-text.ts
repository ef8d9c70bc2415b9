/**
 * Inventory text (SKUs, part names, integration messages) reaches the terminal, and a SKU holding
 * "\x1b[2J" or "\r\n" must not clear the screen or forge a row. Control characters (C0, DEL, C1)
 * and the invisible characters that reorder or hide text (bidirectional overrides and isolates,
 * zero-width spaces and joiners) are written as visible escapes: "\x1b", "\r", "\u202e".
 */
const CONTROL_OR_INVISIBLE =
  /[\x00-\x09\x0B-\x1F\x7F-\x9F\u200B-\u200F\u2028\u2029\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/g
const CONTROL_OR_INVISIBLE_OR_NEWLINE =
  /[\x00-\x1F\x7F-\x9F\u200B-\u200F\u2028\u2029\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/g

const NAMED: Record<string, string> = {'\n': String.raw`\n`, '\r': String.raw`\r`, '\t': String.raw`\t`}

function visible(character: string): string {
  const named = NAMED[character]
  if (named) return named
  const code = character.charCodeAt(0)
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
}

/** One value inside a line (a table cell, a SKU in a sentence): every control character escaped, line feeds too. */
export function escapeValue(text: string): string {
  return text.replace(CONTROL_OR_INVISIBLE_OR_NEWLINE, visible)
}

/** A whole block of human output: every control character escaped but the line feeds that separate its lines. */
export function escapeOutput(text: string): string {
  return text.replace(CONTROL_OR_INVISIBLE, visible)
}
