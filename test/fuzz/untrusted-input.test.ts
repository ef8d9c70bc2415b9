import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import fc from 'fast-check'
import {beforeAll, describe, expect, it} from 'vitest'

import {validateStep} from '../../src/agent/step.js'
import {parseCallText} from '../../src/dataset/call-text.js'
import {findSyntaxProblem, locatePointer} from '../../src/dataset/json-text.js'
import {findPii} from '../../src/dataset/pii.js'
import {validateDatasetFiles, repairLine} from '../../src/dataset/validate.js'
import {RULES} from '../../src/tools/catalogue.js'
import {classifyMessage, unitEvidence} from '../../src/engines/message-classifier.js'
import {parseStepText} from '../../src/engines/model-session.js'
import {InvagentError} from '../../src/errors.js'
import {inspectGguf} from '../../src/models/inspect-gguf.js'
import {renderMessages, stepText, type TrajectoryTurn} from '../../src/prompt/render.js'
import {TOOL_NAMES} from '../../src/tools/tools.js'
import {readTrainConfigFile, validateTrainConfig} from '../../src/train/config-file.js'
import {redactText} from '../../src/util/redact.js'
import {temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/*
 * The fuzzing tier: every parser of untrusted input (dataset lines, GGUF headers, training
 * configs, a model's steps and tool arguments, integration messages, inventory text in prompts)
 * is fed generated input. For each: it does not crash (only invagent's own errors escape, with a
 * message), it does not hang (every input is handled within a time bound), and what it reports
 * is well-formed. The seed is fixed so a failure reproduces; fast-check prints the shrunk input.
 */

const SEED = 20260131
/** Milliseconds any one input may take: linear work on these sizes is far below it. */
const PER_INPUT_MS = 1500

function timed<T>(what: string, input: unknown, work: () => T): T {
  const start = performance.now()
  const result = work()
  const elapsed = performance.now() - start
  if (elapsed > PER_INPUT_MS)
    throw new Error(`${what} took ${Math.round(elapsed)} ms on an input of ${JSON.stringify(input).length} characters`)
  return result
}

async function timedAsync<T>(what: string, work: () => Promise<T>, limitMs = PER_INPUT_MS * 2): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const start = performance.now()
  try {
    return await Promise.race([
      work(),
      new Promise<never>(
        (_resolve, reject) =>
          (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${limitMs} ms`)), limitMs)),
      ),
    ])
  } finally {
    clearTimeout(timer)
    if (performance.now() - start > limitMs)
      throw new Error(`${what} blocked for ${Math.round(performance.now() - start)} ms`)
  }
}

/** Fragments that stress backtracking patterns and hand-written scanners. */
const FRAGMENTS = [
  'a',
  'Z',
  '1',
  '0',
  ' ',
  '  ',
  '\t',
  '\n',
  '@',
  '.',
  '-',
  '+',
  '(',
  ')',
  ':',
  ';',
  ',',
  '"',
  "'",
  '\\',
  '{',
  '}',
  '[',
  ']',
  '//',
  '/*',
  'tel',
  'call me on',
  'sku ',
  'unit ',
  'job ',
  'twice',
  'not found',
  'Maria ',
  'approved by ',
  'Mr. ',
  'observation:',
  'Thought:',
  'get_part(',
  'part_id=',
  '\u0000',
  '\u001b[2J',
  '\r',
  '\uFEFF',
  'é',
  '\u202e',
  '🙂',
  'true',
  'null',
  '12',
  '-3',
  '1e999',
  '"id":',
  '"trajectory":',
  'get_part(part_id="P-000001")\n',
  'Observation: ',
  '020 7946 0958',
  'jane@acme.com',
]

const fragments = (maxLength: number) =>
  fc.array(fc.constantFrom(...FRAGMENTS), {maxLength}).map((parts) => parts.join(''))

/** Text from the fragments, sometimes a single fragment repeated thousands of times. */
const hostileText = fc.oneof(
  {weight: 3, arbitrary: fc.array(fc.constantFrom(...FRAGMENTS), {maxLength: 400}).map((parts) => parts.join(''))},
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.array(fc.constantFrom(...FRAGMENTS), {minLength: 1, maxLength: 3}), fc.integer({min: 500, max: 20_000}))
      .map(([parts, times]) => parts.join('').repeat(times)),
  },
  // A long run between a context that starts a construct and one that may (or may not) end it.
  {
    weight: 3,
    arbitrary: fc
      .tuple(fragments(6), fc.constantFrom(...FRAGMENTS), fc.integer({min: 2000, max: 30_000}), fragments(3))
      .map(([before, run, times, after]) => before + run.repeat(times) + after),
  },
  {weight: 2, arbitrary: fc.string({unit: 'binary', maxLength: 2000})},
  {weight: 1, arbitrary: fc.json({maxDepth: 4})},
)

// endOnFailure: a time-bound failure is reported at once; shrinking a slow input would take minutes.
const params = {seed: SEED, numRuns: 150, endOnFailure: true}

describe('fuzz: JSONL lines of a dataset', () => {
  it(
    'findSyntaxProblem, repairLine, locatePointer and parseCallText never throw or hang, and point inside ' +
      'the line',
    () => {
      fc.assert(
        fc.property(
          hostileText,
          fc.constantFrom('/id', '/trajectory/0/action', '/meta/rootCause', '/a~1b'),
          (line, pointer) => {
            const problem = timed('findSyntaxProblem', line, () => findSyntaxProblem(line))
            if (problem) {
              expect(problem.offset).toBeGreaterThanOrEqual(0)
              expect(problem.offset).toBeLessThanOrEqual(line.length)
              expect(problem.message.length).toBeGreaterThan(0)
            }
            const repaired = timed('repairLine', line, () => repairLine(line))
            if (repaired) expect(() => JSON.parse(repaired.text)).not.toThrow()
            const at = timed('locatePointer', line, () => locatePointer(line, pointer))
            expect(at).toBeGreaterThanOrEqual(0)
            const parsed = timed('parseCallText', line, () => parseCallText(line, new Set(TOOL_NAMES)))
            for (const found of parsed.problems) expect(found.message.length).toBeGreaterThan(0)
          },
        ),
        params,
      )
    },
  )

  it('parseCallText reads call text in the shapes of its grammar, with long runs anywhere, in bounded time', () => {
    // Calls, labels and whitespace runs in the places its grammar has them: a lazy observation
    // pattern with whitespace on both sides once took seconds on a run of 20,000 spaces.
    const section = fc.oneof(
      fc.constantFrom(
        'get_part(part_id="P-000001")',
        'recompute_on_hand(part_id="P-1", reason="drift")',
        'escalate(reason="x", summary="y")',
        'get_part(',
      ),
      fc.constantFrom('Thought: ', 'Observation: ', 'Result:', 'Action: ', 'observation :', '\n', '\n\n'),
      fragments(4),
      fc
        .tuple(fc.constantFrom(' ', '\n', ' \n', '\t', 'a'), fc.integer({min: 1000, max: 30_000}))
        .map(([run, times]) => run.repeat(times)),
    )
    fc.assert(
      fc.property(fc.array(section, {minLength: 1, maxLength: 10}), (sections) => {
        const text = sections.join('')
        const parsed = timed('parseCallText', text, () => parseCallText(text, new Set(TOOL_NAMES)))
        // A known tool, or a snake_case name that validation then reports as an unknown tool.
        for (const call of parsed.calls) {
          expect(TOOL_NAMES.includes(call.tool as never) || call.tool.includes('_'), call.tool.slice(0, 80)).toBe(true)
          expect(text.startsWith(call.tool, call.offset)).toBe(true)
        }
      }),
      params,
    )
  })

  it('validate reads any file of lines and reports each problem with a place and a message', async () => {
    const directory = temporaryDirectory('invagent-fuzz-')
    let index = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          hostileText.map((text) => text.replaceAll('\n', ' ').slice(0, 50_000)),
          {minLength: 0, maxLength: 8},
        ),
        async (lines) => {
          const file = join(directory, `lines-${index++}.jsonl`)
          writeFileSync(file, lines.join('\n'))
          const report = await timedAsync('validateDatasetFiles', () => validateDatasetFiles([file], {worker: false}))
          expect(report.ok).toBe(false) // nothing generated here is a playbook example
          for (const problem of report.problems) {
            expect(problem.message.length).toBeGreaterThan(0)
            expect(problem.line).toBeGreaterThanOrEqual(0)
          }
        },
      ),
      {seed: SEED, numRuns: 40, endOnFailure: true},
    )
  })
})

describe('fuzz: GGUF headers', () => {
  let valid: Buffer
  let directory: string
  beforeAll(() => {
    directory = temporaryDirectory('invagent-fuzz-gguf-')
    valid = readFileSync(writeTinyGguf(join(directory, 'tiny.gguf')).path)
  })

  it("inspect reads a damaged or foreign file only as invagent's own error, in bounded time", async () => {
    let index = 0
    const damaged = fc.oneof(
      fc.uint8Array({maxLength: 4096}).map((bytes) => Buffer.from(bytes)),
      fc.integer({min: 0, max: 8192}).map((length) => valid.subarray(0, length)),
      fc.array(fc.tuple(fc.nat(), fc.integer({min: 0, max: 255})), {minLength: 1, maxLength: 12}).map((edits) => {
        const copy = Buffer.from(valid)
        // The header is where the parser reads counts and lengths: damage it there.
        for (const [offset, byte] of edits) copy[offset % Math.min(copy.length, 4096)] = byte
        return copy
      }),
    )
    await fc.assert(
      fc.asyncProperty(damaged, async (bytes) => {
        const file = join(directory, `damaged-${index++}.gguf`)
        writeFileSync(file, bytes)
        try {
          const inspection = await timedAsync('inspectGguf', () => inspectGguf(file, {hash: false}), 10_000)
          expect(inspection.sizeBytes).toBe(bytes.length)
        } catch (error) {
          if (!(error instanceof InvagentError)) throw error
          expect(error.message.length).toBeGreaterThan(0)
        }
      }),
      {seed: SEED, numRuns: 60, endOnFailure: true},
    )
  }, 300_000)
})

describe('fuzz: training config files', () => {
  it('reads any YAML or JSON text as a config or as a ConfigError with a message', () => {
    const directory = temporaryDirectory('invagent-fuzz-config-')
    let index = 0
    const configText = fc.oneof(
      hostileText,
      fc.json({maxDepth: 4}),
      fc
        .record({
          baseModel: fc.string(),
          lora: fc.record({r: fc.oneof(fc.integer(), fc.string())}),
          training: fc.dictionary(fc.string(), fc.jsonValue()),
        })
        .map((value) => JSON.stringify(value)),
      fc
        .array(
          fc.tuple(
            fc.constantFrom('baseModel', 'lora', 'training', 'r', 'epochs', '- ', '  ', '&a', '*a', '!!binary', '<<'),
            fc.string(),
          ),
          {maxLength: 20},
        )
        .map((pairs) => pairs.map(([key, value]) => `${key}: ${value}`).join('\n')),
    )
    fc.assert(
      fc.property(configText, fc.constantFrom('yaml', 'json'), (text, extension) => {
        const file = join(directory, `config-${index++}.${extension}`)
        writeFileSync(file, text)
        try {
          timed('train config', text, () =>
            validateTrainConfig(readTrainConfigFile(file).input, readTrainConfigFile(file).source),
          )
        } catch (error) {
          if (!(error instanceof InvagentError)) throw error
          expect(error.message.length).toBeGreaterThan(0)
        }
      }),
      params,
    )
  })
})

describe('fuzz: steps and tool arguments from a model', () => {
  it('any text is a step or a parse error the model is told about', () => {
    fc.assert(
      fc.property(hostileText, fc.boolean(), (text, hitTokenLimit) => {
        const parsed = timed('parseStepText', text, () => parseStepText(text, hitTokenLimit))
        if (parsed.step === undefined) expect(parsed.parseError!.length).toBeGreaterThan(0)
        else expect(() => timed('validateStep', text, () => validateStep(parsed.step))).not.toThrow()
      }),
      params,
    )
  })

  it('any value under any tool name is validated or refused with an error, never thrown', () => {
    const candidate = fc.oneof(
      fc.anything(),
      fc.record({
        thought: fc.oneof(fc.string(), fc.anything()),
        tool: fc.oneof(fc.constantFrom(...TOOL_NAMES), fc.string()),
        args: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.anything()),
      }),
      fc.record({
        thought: fc.string(),
        tool: fc.constantFrom(...TOOL_NAMES),
        args: fc.record(
          {
            part_id: fc.oneof(fc.string(), fc.integer()),
            txn_id: fc.string(),
            reason: fc.string(),
            delta: fc.oneof(fc.integer(), fc.double()),
            limit: fc.oneof(fc.integer(), fc.string()),
          },
          {requiredKeys: []},
        ),
      }),
    )
    fc.assert(
      fc.property(candidate, (value) => {
        const result = timed('validateStep', '(value)', () => validateStep(value))
        if (!result.ok) expect(result.error.length).toBeGreaterThan(0)
        else expect(TOOL_NAMES).toContain(result.tool.name)
      }),
      {seed: SEED, numRuns: 500, endOnFailure: true},
    )
  })
})

describe('fuzz: integration messages and inventory text', () => {
  const CLASSES = [
    'invoiced',
    'redelivery',
    'job_rerun',
    'unknown_sku',
    'bad_uom',
    'transient',
    'uom_evidence',
    'unrecognized',
    'info',
  ]

  it('every message is classified, in bounded time', () => {
    fc.assert(
      fc.property(hostileText, fc.constantFrom('info', 'warn', 'error', ''), (message, level) => {
        expect(CLASSES).toContain(timed('classifyMessage', message, () => classifyMessage(message, level)))
        const evidence = timed('unitEvidence', message, () => unitEvidence(message))
        if (evidence) expect(Number.isInteger(evidence.qty)).toBe(true)
      }),
      params,
    )
  })

  it('inventory text renders into prompts and logs without a crash, in bounded time', () => {
    const finding = fc.record({
      id: fc.string(),
      rule: fc.constantFrom(...RULES),
      entity: hostileText,
      severity: fc.constantFrom('high' as const, 'medium' as const, 'low' as const),
      evidence: fc.dictionary(
        fc.string({maxLength: 20}),
        fc.oneof(hostileText, fc.integer(), fc.boolean(), fc.constant(null)),
        {maxKeys: 4},
      ),
    })
    const turn: fc.Arbitrary<TrajectoryTurn> = fc.record(
      {
        step: fc.oneof(
          fc.anything(),
          fc.record({
            thought: hostileText,
            tool: fc.constantFrom(...TOOL_NAMES),
            args: fc.dictionary(fc.string(), hostileText),
          }),
        ),
        raw: fc.oneof(fc.constant(undefined), hostileText),
        observation: fc.oneof(
          fc.record({
            ok: fc.constant(true as const),
            result: fc.oneof(
              fc.jsonValue(),
              fc.record({events: fc.array(fc.record({message: hostileText, level: fc.string()}), {maxLength: 3})}),
            ),
          }),
          fc.record({ok: fc.constant(false as const), error: hostileText}),
        ),
      },
      {requiredKeys: ['step', 'observation']},
    ) as fc.Arbitrary<TrajectoryTurn>
    fc.assert(
      fc.property(finding, fc.array(turn, {maxLength: 3}), (found, turns) => {
        const messages = timed('renderMessages', '(finding)', () => renderMessages(found, turns))
        for (const message of messages) expect(typeof message.content).toBe('string')
        for (const item of turns)
          expect(typeof timed('stepText', '(step)', () => stepText(item.step, item.raw))).toBe('string')
        timed('redactText', found.entity, () => redactText(found.entity))
        timed('findPii', found.entity, () => findPii(found.entity))
      }),
      {seed: SEED, numRuns: 100, endOnFailure: true},
    )
  })
})
