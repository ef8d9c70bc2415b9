/*
 * The instruction format writes tool calls as text: `adjust_quantity(part_id="P-000123", delta=3)`.
 * This parses them, with the reasoning before each call and an optional "Observation: …" after
 * it, so `validate` can check the calls and `convert` can turn them into trajectory steps.
 */

export interface TextCall {
  tool: string
  args: Record<string, unknown>
  /** Reasoning written before the call, labels such as "Thought:" removed. */
  thought: string
  /** Text after "Observation:" following the call, when the example has one. */
  observation?: string
  /** 0-based offset of the call's name in the text. */
  offset: number
}

export interface CallParseProblem {
  offset: number
  message: string
}

const CALL_START = /\b([A-Za-z_][A-Za-z0-9_]*)\(\s*(?=\)|[A-Za-z_][A-Za-z0-9_]*\s*=)/g

class ArgumentReader {
  index: number
  readonly text: string
  constructor(text: string, start: number) {
    this.text = text
    this.index = start
  }

  fail(message: string): never {
    throw Object.assign(new Error(message), {offset: this.index})
  }

  space(): void {
    while (/\s/.test(this.text[this.index] ?? '')) this.index++
  }

  name(): string {
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.index))
    if (!match) this.fail('expected an argument name')
    this.index += match[0].length
    return match[0]
  }

  value(): unknown {
    this.space()
    const char = this.text[this.index]
    if (char === '"' || char === "'") return this.quoted(char)
    if (char === '{' || char === '[') return this.json()
    const match = /^(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|True|False|null|None)(?![\w.])/.exec(
      this.text.slice(this.index),
    )
    if (!match)
      this.fail(
        `expected a quoted string, a number, true/false or null, found "${this.text.slice(this.index, this.index + 12)}"`,
      )
    this.index += match[0].length
    const word = match[0]
    if (word === 'true' || word === 'True') return true
    if (word === 'false' || word === 'False') return false
    if (word === 'null' || word === 'None') return null
    return Number(word)
  }

  quoted(quote: string): string {
    const start = this.index
    this.index++
    let value = ''
    while (this.index < this.text.length) {
      const char = this.text[this.index]
      if (char === quote) {
        this.index++
        return value
      }
      if (char === '\\') {
        const next = this.text[this.index + 1]
        value += next === 'n' ? '\n' : next === 't' ? '\t' : next
        this.index += 2
        continue
      }
      value += char
      this.index++
    }
    this.index = start
    this.fail('unterminated string')
  }

  json(): unknown {
    // The longest balanced bracket run that parses as JSON.
    const open = this.text[this.index]
    const close = open === '{' ? '}' : ']'
    let depth = 0
    let inString = false
    for (let end = this.index; end < this.text.length; end++) {
      const char = this.text[end]
      if (inString) {
        if (char === '\\') end++
        else if (char === '"') inString = false
        continue
      }
      if (char === '"') inString = true
      else if (char === open) depth++
      else if (char === close && --depth === 0) {
        try {
          const value: unknown = JSON.parse(this.text.slice(this.index, end + 1))
          this.index = end + 1
          return value
        } catch {
          this.fail('invalid JSON in an argument')
        }
      }
    }
    this.fail('unbalanced brackets in an argument')
  }
}

function cleanThought(text: string): string {
  return text
    .replace(/^\s*(?:observation|result)\s*:.*$/gim, '')
    .replace(/\b(?:thought|reasoning|analysis|action|step\s*\d+|call)\s*:\s*/gi, '')
    .replace(/^[\s\-*\d.)]+/gm, '')
    .replace(/\s+/g, ' ')
    .trim()
}

/** Parses every `tool(name=value, …)` call in a text; `known` limits which names count as calls. */
export function parseCallText(
  text: string,
  known?: ReadonlySet<string>,
): {calls: TextCall[]; problems: CallParseProblem[]} {
  const calls: TextCall[] = []
  const problems: CallParseProblem[] = []
  let previousEnd = 0
  for (const match of text.matchAll(CALL_START)) {
    if (match.index < previousEnd) continue
    const tool = match[1]
    if (known && !known.has(tool) && !/_/.test(tool)) continue
    const reader = new ArgumentReader(text, match.index + match[0].length)
    const args: Record<string, unknown> = {}
    try {
      while (true) {
        reader.space()
        if (text[reader.index] === ')') {
          reader.index++
          break
        }
        const name = reader.name()
        reader.space()
        if (text[reader.index] !== '=') reader.fail(`expected "=" after argument ${name}`)
        reader.index++
        if (name in args) reader.fail(`argument ${name} given twice`)
        args[name] = reader.value()
        reader.space()
        if (text[reader.index] === ',') reader.index++
        else if (text[reader.index] !== ')') reader.fail(`expected "," or ")" after argument ${name}`)
      }
    } catch (error) {
      const {offset, message} = error as Error & {offset: number}
      problems.push({offset, message: `cannot parse the call to ${tool}: ${message}`})
      previousEnd = offset
      continue
    }
    const thought = cleanThought(text.slice(previousEnd, match.index))
    calls.push({tool, args, thought, offset: match.index})
    previousEnd = reader.index
  }
  // Observations: "Observation: …" between one call and the next.
  for (const [index, call] of calls.entries()) {
    const after = text.slice(index === 0 ? call.offset : call.offset, calls[index + 1]?.offset ?? text.length)
    const observed =
      /(?:^|\n)\s*(?:observation|result)\s*:\s*(.+?)\s*(?=\n\s*(?:thought|action|reasoning)\s*:|\n\s*\n|$)/is.exec(
        after,
      )
    if (observed) call.observation = observed[1].trim()
  }
  // A thought that was really the previous call's observation line is cleaned above; keep the rest.
  return {calls, problems}
}
