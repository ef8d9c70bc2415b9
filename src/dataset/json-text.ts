/*
 * Positions inside one line of JSON text, for `file:line:col` messages. JSON.parse says what is
 * wrong only sometimes and where only sometimes, so syntax errors are found again by a small
 * scanner here, and the column of a value is found by walking the text along a JSON pointer.
 * Both run only on lines already known to be wrong, so speed does not matter.
 */

export interface JsonSyntaxProblem {
  /** 0-based offset in the line. */
  offset: number
  message: string
}

class Scanner {
  index = 0
  readonly text: string
  constructor(text: string) {
    this.text = text
  }

  fail(message: string, offset = this.index): never {
    throw Object.assign(new Error(message), {offset})
  }

  skipSpace(): void {
    while (this.index < this.text.length && ' \t\r\n'.includes(this.text[this.index])) this.index++
  }

  describeHere(): string {
    if (this.index >= this.text.length) return 'the end of the line'
    const rest = this.text.slice(this.index)
    if (rest.startsWith('//') || rest.startsWith('/*')) return 'a comment'
    if (rest.startsWith('#')) return 'a comment'
    return `"${rest[0]}"`
  }

  value(): void {
    this.skipSpace()
    const char = this.text[this.index]
    if (char === '{') return this.object()
    if (char === '[') return this.array()
    if (char === '"') return this.string()
    if (char === '-' || (char >= '0' && char <= '9')) return this.number()
    for (const literal of ['true', 'false', 'null']) {
      if (this.text.startsWith(literal, this.index)) {
        this.index += literal.length
        return
      }
    }
    if (char === "'") this.fail('strings must use double quotes, found a single quote')
    this.fail(`expected a value, found ${this.describeHere()}`)
  }

  object(): void {
    this.index++
    this.skipSpace()
    if (this.text[this.index] === '}') {
      this.index++
      return
    }
    while (true) {
      this.skipSpace()
      if (this.text[this.index] === '}') this.trailingComma()
      if (this.text[this.index] !== '"')
        this.fail(`expected a double-quoted property name, found ${this.describeHere()}`)
      this.string()
      this.skipSpace()
      if (this.text[this.index] !== ':') this.fail(`expected ":" after the property name, found ${this.describeHere()}`)
      this.index++
      this.value()
      this.skipSpace()
      const next = this.text[this.index]
      if (next === ',') {
        this.index++
        continue
      }
      if (next === '}') {
        this.index++
        return
      }
      this.fail(`expected "," or "}" after a property value, found ${this.describeHere()}`)
    }
  }

  array(): void {
    this.index++
    this.skipSpace()
    if (this.text[this.index] === ']') {
      this.index++
      return
    }
    while (true) {
      this.skipSpace()
      if (this.text[this.index] === ']') this.trailingComma()
      this.value()
      this.skipSpace()
      const next = this.text[this.index]
      if (next === ',') {
        this.index++
        continue
      }
      if (next === ']') {
        this.index++
        return
      }
      this.fail(`expected "," or "]" after an array element, found ${this.describeHere()}`)
    }
  }

  trailingComma(): never {
    const comma = this.text.lastIndexOf(',', this.index)
    this.fail('trailing comma (JSON allows none before a closing bracket)', comma)
  }

  string(): void {
    const start = this.index
    this.index++
    while (this.index < this.text.length) {
      const char = this.text[this.index]
      if (char === '"') {
        this.index++
        return
      }
      if (char === '\\') {
        const escape = this.text[this.index + 1]
        if (escape === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.index + 2, this.index + 6)))
            this.fail('invalid \\u escape in a string')
          this.index += 6
          continue
        }
        if (!'"\\/bfnrt'.includes(escape ?? '')) this.fail(`invalid escape "\\${escape ?? ''}" in a string`)
        this.index += 2
        continue
      }
      if (char < ' ') this.fail('unescaped control character in a string')
      this.index++
    }
    this.fail('unterminated string', start)
  }

  number(): void {
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.index))
    if (!match) this.fail('invalid number')
    this.index += match[0].length
  }
}

/** Where and why one line is not valid JSON; undefined when it is. */
export function findSyntaxProblem(text: string): JsonSyntaxProblem | undefined {
  const scanner = new Scanner(text)
  try {
    scanner.skipSpace()
    if (scanner.index >= text.length) return {offset: 0, message: 'blank line (JSONL allows none)'}
    if (
      text.startsWith('//', scanner.index) ||
      text.startsWith('#', scanner.index) ||
      text.startsWith('/*', scanner.index)
    )
      return {offset: scanner.index, message: 'comment line (JSONL allows no comments)'}
    scanner.value()
    scanner.skipSpace()
    if (scanner.index < text.length) {
      const rest = text.slice(scanner.index)
      if (rest.startsWith('//') || rest.startsWith('#') || rest.startsWith('/*'))
        return {offset: scanner.index, message: 'comment after the JSON value (JSONL allows no comments)'}
      return {offset: scanner.index, message: 'unexpected text after the JSON value (one JSON value per line)'}
    }
    return undefined
  } catch (error) {
    const {offset, message} = error as Error & {offset: number}
    return {offset, message}
  }
}

/** Decodes a JSON pointer ("/trajectory/0/action") into its segments. */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'))
}

export function toPointer(segments: ReadonlyArray<string | number>): string {
  return segments.map((segment) => `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('')
}

/**
 * The 0-based offset of the value a JSON pointer names inside a valid JSON text, or of the
 * property name when `key` is given (the pointer then names the object holding it). Falls back
 * to the deepest position reached when the path does not exist.
 */
export function locatePointer(text: string, pointer: string, key?: string): number {
  const segments = pointerSegments(pointer)
  if (key !== undefined) segments.push(key)
  const scanner = new Scanner(text)
  let reached = 0
  try {
    scanner.skipSpace()
    for (const [depth, segment] of segments.entries()) {
      reached = scanner.index
      const isKey = key !== undefined && depth === segments.length - 1
      const char = text[scanner.index]
      if (char === '{') {
        scanner.index++
        let found = false
        while (true) {
          scanner.skipSpace()
          if (text[scanner.index] !== '"') break
          const nameStart = scanner.index
          scanner.string()
          const name = JSON.parse(text.slice(nameStart, scanner.index)) as string
          scanner.skipSpace()
          scanner.index++ // ':'
          scanner.skipSpace()
          if (name === segment) {
            if (isKey) return nameStart
            found = true
            break
          }
          scanner.value()
          scanner.skipSpace()
          if (text[scanner.index] !== ',') break
          scanner.index++
        }
        if (!found) return reached
      } else if (char === '[') {
        scanner.index++
        const wanted = Number(segment)
        for (let element = 0; element < wanted; element++) {
          scanner.value()
          scanner.skipSpace()
          if (text[scanner.index] !== ',') return reached
          scanner.index++
        }
        scanner.skipSpace()
      } else {
        return reached
      }
    }
    return scanner.index
  } catch {
    return reached
  }
}
