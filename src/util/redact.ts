/**
 * PII redaction for everything that leaves the process as a log line. Emails and phone numbers
 * are replaced by a marker, in values and in object keys. Identifiers invagent itself uses
 * (P-000123, T-…, SO-2026-0000123/1, dates) and runs of quantities ("1200 1500 2000") are left
 * alone: a number counts as a phone number only with an international prefix, an area code in
 * parentheses, or dash/dot grouping.
 */
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g

const PHONE_SHAPES = [
  // +44 20 7946 0958, +14155552671, 0049 30 1234567 (eight digits at least: "+215" is a stock delta)
  String.raw`(?=[+0]{1,2}(?:[\s().-]*\d){8})(?:\+|00)\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}`,
  // (555) 123-4567
  String.raw`\(\d{2,4}\)[\s.-]?\d{3,4}[\s.-]\d{3,4}`,
  // 555-123-4567, 555.123.4567
  String.raw`\d{2,4}[-.]\d{3,4}[-.]\d{3,4}`,
]
const PHONE = new RegExp(PHONE_SHAPES.map((shape) => String.raw`(?<![\w/-])(?:${shape})(?![\w/])`).join('|'), 'g')

export function redactText(text: string): string {
  return text.replace(EMAIL, '[redacted-email]').replace(PHONE, '[redacted-phone]')
}

/** Deep copy with every string, and every object key, redacted. */
export function redactValue<T>(value: T): T {
  if (typeof value === 'string') return redactText(value) as T
  if (Array.isArray(value)) return value.map((item) => redactValue(item)) as T
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) copy[redactText(key)] = redactValue(item)
    return copy as T
  }
  return value
}
