import {copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {findPii, Pseudonymizer} from '../../src/dataset/pii.js'
import {defaultScrubOutput, scrubFile, scrubJsonText, type ScrubReport} from '../../src/dataset/scrub.js'
import {scrubProgressOnTerminal} from '../../src/cli/render-scrub.js'
import {ConfigError, UserError} from '../../src/errors.js'
import {temporaryDirectory} from '../helpers/cli.js'

const FIXTURE = resolve(import.meta.dirname, '../fixtures/dataset/scrub-sample.jsonl')

/** Every string value (not keys) of a JSON value, depth first. */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.flatMap(stringsOf)
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(stringsOf)
  return []
}

/** The same value with every string replaced by a marker: what scrubbing must not change. */
function shapeOf(value: unknown): unknown {
  if (typeof value === 'string') return 'string'
  if (Array.isArray(value)) return value.map(shapeOf)
  if (value !== null && typeof value === 'object')
    return Object.entries(value).map(([key, item]) => [key, shapeOf(item)])
  return value
}

function fixtureCopy(name = 'data.jsonl'): {directory: string; file: string} {
  const directory = temporaryDirectory()
  const file = join(directory, name)
  copyFileSync(FIXTURE, file)
  return {directory, file}
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n')
}

describe('scrubFile on the sample dataset', () => {
  it('replaces the PII of free-text fields and keeps everything else byte for byte', async () => {
    const {file} = fixtureCopy()
    const report = await scrubFile({input: file})
    expect(report.output).toBe(file.replace(/\.jsonl$/, '.scrubbed.jsonl'))
    expect(report).toMatchObject({
      lines: 5,
      linesChanged: 3,
      counts: {email: 4, phone: 4, name: 11},
      changesNotListed: 0,
      unparsableLines: 1,
    })
    expect(report.unparsable).toEqual([{line: 3, message: "not JSON: Unexpected token '/'"}])

    const before = lines(file)
    const after = lines(report.output)
    expect(after).toHaveLength(before.length)
    expect(after[1]).toBe(before[1]) // no PII: copied as is
    expect(after[2]).toBe(before[2]) // not JSON: copied as is
    expect(after[5]).toBe('') // the final newline is kept
    for (const index of [0, 3, 4]) {
      const original = JSON.parse(before[index])
      const scrubbed = JSON.parse(after[index])
      expect(after[index]).not.toBe(before[index])
      expect(shapeOf(scrubbed), `line ${index + 1} keeps its keys, their order and every number`).toEqual(
        shapeOf(original),
      )
      for (const text of stringsOf(scrubbed)) expect(findPii(text), text).toEqual([])
    }
    // Numbers keep their spelling (12.0 would print as 12 after a parse and stringify).
    expect(after[0]).toContain('"stock_delta": 12.0')
    for (const pii of [
      'Jane',
      'Doe',
      'jane.doe',
      '07700',
      '7946',
      'Okafor',
      'Maria',
      'Gonzalez',
      '123-4567',
      'Pieter',
      'Berg',
      'José',
    ]) {
      expect(
        after.filter((line, index) => index !== 2 && line.includes(pii)),
        pii,
      ).toEqual([])
    }
  })

  it('leaves identifiers, enumerations and tool names alone', async () => {
    const {file} = fixtureCopy()
    const report = await scrubFile({input: file})
    const original = JSON.parse(lines(file)[0])
    const scrubbed = JSON.parse(lines(report.output)[0])
    expect(scrubbed.id).toBe(original.id)
    expect(scrubbed.meta).toEqual(original.meta)
    expect(scrubbed.input.finding).toEqual(original.input.finding)
    expect(scrubbed.trajectory.map((step: {action: unknown}) => step.action)).not.toEqual(
      original.trajectory.map((step: {action: unknown}) => step.action),
    )
    expect(
      scrubbed.trajectory.map((step: {action: {tool: string; args: {txn_id?: string}}}) => [
        step.action.tool,
        step.action.args.txn_id,
      ]),
    ).toEqual(
      original.trajectory.map((step: {action: {tool: string; args: {txn_id?: string}}}) => [
        step.action.tool,
        step.action.args.txn_id,
      ]),
    )
  })

  it('lists each change with its line, JSON pointer, kind and both values', async () => {
    const {file} = fixtureCopy()
    const report = await scrubFile({input: file})
    expect(
      report.changes
        .filter((change) => change.line === 1)
        .map((change) => [change.pointer, change.kind, change.before]),
    ).toEqual([
      ['/input/context', 'name', 'Jane Doe'],
      ['/input/context', 'email', 'jane.doe@acme-logistics.com'],
      ['/input/context', 'phone', '07700 900123'],
      ['/trajectory/0/thought', 'name', 'Jane Doe'],
      ['/trajectory/0/observation/events/1/message', 'name', 'Okafor'],
      ['/trajectory/0/observation/events/1/message', 'phone', '+44 20 7946 0958'],
      ['/trajectory/1/action/args/reason', 'name', 'Jane Doe'],
      ['/final/summary', 'email', 'jane.doe@acme-logistics.com'],
    ])
    for (const change of report.changes) expect(findPii(change.after)).toEqual([])
  })
})

describe('scrubbing is idempotent and consistent', () => {
  it('scrub(scrub(x)) is scrub(x), byte for byte, with nothing to change the second time', async () => {
    const {directory, file} = fixtureCopy()
    const first = await scrubFile({input: file})
    const second = await scrubFile({input: first.output, out: join(directory, 'twice.jsonl')})
    expect(readFileSync(second.output, 'utf8')).toBe(readFileSync(first.output, 'utf8'))
    expect(second).toMatchObject({linesChanged: 0, counts: {email: 0, phone: 0, name: 0}, changes: []})
  })

  it('gives one value one pseudonym across lines', async () => {
    const {file} = fixtureCopy()
    const report = await scrubFile({input: file})
    const pseudonymsOf = (value: string) =>
      new Set(report.changes.filter((change) => change.before === value).map((change) => change.after))
    for (const value of ['jane.doe@acme-logistics.com', 'Jane Doe', 'Maria Gonzalez', 'Maria'])
      expect(pseudonymsOf(value).size, value).toBe(1)
    expect(
      report.changes.filter((change) => change.before === 'jane.doe@acme-logistics.com').map((change) => change.line),
    ).toEqual([1, 1, 5])
    // 555-123-4567 and (555) 123-4567 are one number.
    expect(pseudonymsOf('555-123-4567')).toEqual(pseudonymsOf('(555) 123-4567'))
  })

  it('gives one value the same pseudonym in another file and another run, and another one under another key', async () => {
    const directory = temporaryDirectory()
    const a = join(directory, 'a.jsonl')
    const b = join(directory, 'b.jsonl')
    writeFileSync(a, `${JSON.stringify({note: 'ask Priya Raghunathan, priya.r@example-erp.com, +44 20 7946 0958'})}\n`)
    writeFileSync(
      b,
      `${JSON.stringify({summary: 'tel: +44 20 7946 0958'})}\n${JSON.stringify({thought: 'mail priya.r@example-erp.com; Priya approved'})}\n`,
    )
    const scrubbedA = JSON.parse(readFileSync((await scrubFile({input: a})).output, 'utf8')).note as string
    const reportB = await scrubFile({input: b})
    const [phoneLine, otherLine] = readFileSync(reportB.output, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, string>)
    const [given, , email, phone] = /^ask (\S+) (\S+), (\S+), (.+)$/.exec(scrubbedA)!.slice(1)
    expect(phoneLine.summary).toBe(`tel: ${phone}`)
    expect(otherLine.thought).toBe(`mail ${email}; ${given} approved`)

    const keyed = await scrubFile({input: a, out: join(directory, 'keyed.jsonl'), key: 'a secret of this project'})
    expect(keyed.changes.map((change) => change.after)).not.toEqual(
      (await scrubFile({input: a, out: join(directory, 'again.jsonl')})).changes.map((change) => change.after),
    )
  })
})

describe('scrubJsonText', () => {
  const scrub = (value: unknown) => scrubJsonText(JSON.stringify(value), new Pseudonymizer())

  it('skips structural keys, *_id keys, tool declaration names and object keys', () => {
    const line = {
      id: 'Maria',
      part_id: 'Maria',
      reservation_id: 'Maria',
      findingId: 'Maria',
      tool: 'Maria',
      sku: 'tel: 555 123 4567',
      uom: 'Maria',
      rule: 'Maria',
      rootCause: 'Maria',
      split: 'Maria',
      source: 'Maria',
      outcome: 'Maria',
      status: 'Maria',
      kind: 'Maria',
      'jane.doe@acme.com': 'key stays',
      tools: [
        {name: 'Maria', description: 'call Maria'},
        {type: 'function', function: {name: 'Maria', description: 'Maria'}},
      ],
      part: {name: 'Maria'},
      aliases: ['Maria'],
    }
    const result = scrub(line)
    expect(result.changes.map((change) => change.pointer)).toEqual([
      '/tools/0/description',
      '/tools/1/function/description',
      '/part/name',
      '/aliases/0',
    ])
    const scrubbed = JSON.parse(result.text)
    expect(Object.keys(scrubbed)).toEqual(Object.keys(line))
    expect({...scrubbed, tools: undefined, part: undefined, aliases: undefined}).toEqual({
      ...line,
      tools: undefined,
      part: undefined,
      aliases: undefined,
    })
  })

  it('escapes pointer tokens (RFC 6901) and handles a top-level string', () => {
    expect(scrub({'a/b': {'c~d': ['x', 'Maria']}}).changes.map((change) => change.pointer)).toEqual(['/a~1b/c~0d/1'])
    expect(scrub('Maria').changes.map((change) => change.pointer)).toEqual([''])
  })

  it('rewrites only the strings that change: escapes, spacing and numbers elsewhere stay as written', () => {
    const text = '{ "a" : "caf\\u00e9 \\"x\\"" ,"n":1.50e3, "b":"per Maria\\n","c" : [ true,null ,"\\/"] }\r'
    const result = scrubJsonText(text, new Pseudonymizer())
    expect(result.changes).toHaveLength(1)
    expect(result.text).toMatch(
      /^\{ "a" : "caf\\u00e9 \\"x\\"" ,"n":1\.50e3, "b":"per \p{Lu}\p{Ll}+\\n","c" : \[ true,null ,"\\\/"\] \}\r$/u,
    )
  })

  it('does not overflow on deep nesting', () => {
    const depth = 50_000
    const text = `${'['.repeat(depth)}"Maria"${']'.repeat(depth)}`
    const result = scrubJsonText(text, new Pseudonymizer())
    expect(result.changes.map((change) => change.pointer.length)).toEqual([depth * 2])
  })
})

describe('scrubFile: files', () => {
  it('names the output after the input', () => {
    expect(defaultScrubOutput('datasets/playbook.jsonl')).toBe('datasets/playbook.scrubbed.jsonl')
    expect(defaultScrubOutput('raw.NDJSON')).toBe('raw.scrubbed.jsonl')
    expect(defaultScrubOutput('export.txt')).toBe('export.txt.scrubbed.jsonl')
  })

  it('refuses to overwrite the input unless in place, and then replaces it atomically', async () => {
    const {directory, file} = fixtureCopy()
    const original = readFileSync(file, 'utf8')
    await expect(scrubFile({input: file, out: file})).rejects.toThrow(UserError)
    await expect(scrubFile({input: file, out: join(directory, '.', 'data.jsonl')})).rejects.toThrow(
      /refusing to overwrite the input/,
    )
    expect(readFileSync(file, 'utf8')).toBe(original)
    await expect(scrubFile({input: file, inPlace: true, out: join(directory, 'other.jsonl')})).rejects.toThrow(
      /--in-place writes to the input itself, but --out names another file/,
    )

    const report = await scrubFile({input: file, inPlace: true})
    expect(report).toMatchObject({inPlace: true, output: file, linesChanged: 3})
    expect(readFileSync(file, 'utf8')).not.toBe(original)
    expect(readdirSync(directory)).toEqual(['data.jsonl'])
  })

  it('says what is wrong with the paths it was given', async () => {
    const directory = temporaryDirectory()
    await expect(scrubFile({input: join(directory, 'missing.jsonl')})).rejects.toThrow(/missing\.jsonl: no such file/)
    await expect(scrubFile({input: directory})).rejects.toThrow(/expected a JSONL file, found a folder/)
    const {file} = fixtureCopy()
    await expect(scrubFile({input: file, out: join(directory, 'no', 'such', 'out.jsonl')})).rejects.toThrow(ConfigError)
  })

  it('leaves nothing half-written when stopped: no output, no temporary file, an earlier output untouched', async () => {
    const {directory, file} = fixtureCopy()
    const out = join(directory, 'out.jsonl')
    writeFileSync(out, 'an earlier scrub\n')
    const controller = new AbortController()
    const big = join(directory, 'big.jsonl')
    writeFileSync(big, `${JSON.stringify({note: 'per Maria '.repeat(20)})}\n`.repeat(50_000))
    const scrub = scrubFile({
      input: big,
      out,
      signal: controller.signal,
      onProgress: () => controller.abort(new Error('stopped by the test')),
    })
    await expect(scrub).rejects.toThrow('stopped by the test')
    expect(readFileSync(out, 'utf8')).toBe('an earlier scrub\n')
    expect(readdirSync(directory).sort()).toEqual(['big.jsonl', 'data.jsonl', 'out.jsonl'])
    expect(existsSync(file)).toBe(true)
  })

  it('keeps CRLF line ends, a byte order mark, blank lines and a missing final newline', async () => {
    const directory = temporaryDirectory()
    const file = join(directory, 'windows.jsonl')
    writeFileSync(file, `\uFEFF{"note":"per Maria"}\r\n\r\n{"note":"no names"}\r\n{"note":"Mr. Smith"}`)
    const report = await scrubFile({input: file})
    const text = readFileSync(report.output, 'utf8')
    expect(text).toMatch(
      /^\uFEFF\{"note":"per \p{Lu}\p{Ll}+"\}\r\n\r\n\{"note":"no names"\}\r\n\{"note":"Mr\. \p{Lu}\p{Ll}+"\}$/u,
    )
    expect(report).toMatchObject({
      lines: 4,
      linesChanged: 2,
      unparsableLines: 1,
      unparsable: [{line: 2, message: 'blank line'}],
    })
  })

  it('streams lines longer than a read chunk, and many lines, reporting progress', async () => {
    const directory = temporaryDirectory()
    const file = join(directory, 'long.jsonl')
    const long = JSON.stringify({note: `${'x'.repeat(3 * 1024 * 1024)} mail jane.doe@acme.com ${'é'.repeat(100_000)}`})
    const short = JSON.stringify({thought: 'Maria counted 12 cartons at WH1-B04-2', part_id: 'P-000123'})
    writeFileSync(file, `${long}\n${`${short}\n`.repeat(100_000)}`)
    const progress: number[] = []
    const report = await scrubFile({input: file, maxListed: 10, onProgress: ({bytesRead}) => progress.push(bytesRead)})
    expect(report).toMatchObject({
      lines: 100_001,
      linesChanged: 100_001,
      counts: {email: 1, phone: 0, name: 100_000},
      changesNotListed: 99_991,
    })
    expect(report.changes).toHaveLength(10)
    expect(progress.length).toBeGreaterThan(5)
    expect(progress.at(-1)).toBe(Buffer.byteLength(readFileSync(file)))
    const output = readFileSync(report.output, 'utf8').split('\n')
    expect(output[0]).toBe(long.replace('jane.doe@acme.com', report.changes[0].after))
    expect(new Set(output.slice(1, -1)).size).toBe(1)
  })

  it('does not quote a line that is not JSON in its message (it may hold PII)', async () => {
    const directory = temporaryDirectory()
    const file = join(directory, 'broken.jsonl')
    writeFileSync(file, '{"note": "mail jane.doe@acme.com",}\nnot json: call 555-123-4567\n')
    const report: ScrubReport = await scrubFile({input: file})
    expect(report.unparsable.map((problem) => problem.line)).toEqual([1, 2])
    for (const problem of report.unparsable) expect(problem.message).not.toMatch(/jane|555|call/)
    expect(readFileSync(report.output, 'utf8')).toBe(readFileSync(file, 'utf8'))
  })
})

describe('scrub progress on a terminal', () => {
  function fakeTerminal(isTTY: boolean): {stream: NodeJS.WriteStream; written: string[]} {
    const written: string[] = []
    return {stream: {isTTY, write: (text: string) => written.push(text)} as unknown as NodeJS.WriteStream, written}
  }

  it('draws one self-overwriting line for big files, clears it at the end, and stays silent elsewhere', () => {
    const terminal = fakeTerminal(true)
    const progress = scrubProgressOnTerminal(terminal.stream)!
    progress({bytesRead: 10 * 1024 * 1024, totalBytes: 64 * 1024 * 1024, lines: 12_345})
    progress({bytesRead: 64 * 1024 * 1024, totalBytes: 64 * 1024 * 1024, lines: 80_000})
    expect(terminal.written).toHaveLength(2)
    expect(terminal.written[0]).toMatch(/^\r\u001B\[2Kscrub: 15% \(10\.0 MiB \/ 64\.0 MiB, 12,345 lines, \d+\.\d s\)$/)
    expect(terminal.written[1]).toBe('\r\u001B[2K')

    const small = fakeTerminal(true)
    scrubProgressOnTerminal(small.stream)!({bytesRead: 1024, totalBytes: 4096, lines: 3})
    expect(small.written).toEqual([])
    expect(scrubProgressOnTerminal(fakeTerminal(false).stream)).toBeUndefined()
  })
})
