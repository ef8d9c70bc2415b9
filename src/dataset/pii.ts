/*
 * PII detection in free text: emails and phone numbers, in the shapes the audit log redacts.
 */
export interface PiiMatch {
  kind: 'email' | 'phone' | 'name'
  start: number
  end: number
  value: string
}

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g
const PHONE = new RegExp(
  [String.raw`(?=[+0]{1,2}(?:[\s().-]*\d){8})(?:\+|00)\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}`, String.raw`\(\d{2,4}\)[\s.-]?\d{3,4}[\s.-]\d{3,4}`, String.raw`\d{2,4}[-.]\d{3,4}[-.]\d{3,4}`]
    .map((shape) => String.raw`(?<![\w/-])(?:${shape})(?![\w/])`)
    .join('|'),
  'g',
)

export function findPii(text: string): PiiMatch[] {
  const matches: PiiMatch[] = []
  // An email needs an "@": the pattern is slow on long text without one.
  for (const [kind, pattern] of (text.includes('@') ? [['email', EMAIL], ['phone', PHONE]] : [['phone', PHONE]]) as Array<['email' | 'phone', RegExp]>) {
    for (const match of text.matchAll(pattern)) matches.push({kind, start: match.index, end: match.index + match[0].length, value: match[0]})
  }
  return matches.sort((a, b) => a.start - b.start)
}
