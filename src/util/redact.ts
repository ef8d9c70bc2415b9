/**
 * PII redaction for everything that leaves the process as a log line. Emails and phone numbers
 * are replaced by a marker; identifiers invagent itself uses (P-000123, T-…, SO-2026-000123/1,
 * timestamps) are left alone because they are not shaped like phone numbers.
 */
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g
// International or grouped national numbers: +44 20 7946 0958, (555) 123-4567, 555-123-4567, 555.123.4567
const PHONE = /(?<![\w/-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?![\w/])/g

export function redactText(text: string): string {
  return text.replace(EMAIL, '[redacted-email]').replace(PHONE, '[redacted-phone]')
}

/** Deep copy with every string redacted. */
export function redactValue<T>(value: T): T {
  if (typeof value === 'string') return redactText(value) as T
  if (Array.isArray(value)) return value.map((item) => redactValue(item)) as T
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) copy[key] = redactValue(item)
    return copy as T
  }
  return value
}
