import {readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {EVAL_ID_BASE} from '../../src/dataset/generate.js'
import {generateSuite} from '../../src/eval/generate-suite.js'
import {buildScenario} from '../../src/eval/scenario.js'
import {loadSuite, parseSuite, suiteHash} from '../../src/eval/suite.js'
import {ROOT_CAUSES} from '../../src/tools/catalogue.js'
import {temporaryDirectory} from '../helpers/cli.js'

const SHIPPED = resolve(import.meta.dirname, '../../datasets/suites/default.json')
const DATASET_EVAL = resolve(import.meta.dirname, '../../datasets/suites/dataset-eval.json')
const EVAL_SPLIT = resolve(import.meta.dirname, '../../datasets/eval.jsonl')
const key = (fault: {rule: string; rootCause: string}) => `${fault.rule}/${fault.rootCause}`
const ALL = ROOT_CAUSES.map(key).sort()

describe('the shipped default suite', () => {
  const suite = loadSuite(SHIPPED)

  it('has every rule and root cause alone, with training and with held-out phrasings', () => {
    for (const phrasings of ['train', 'heldout'] as const) {
      const single = suite.scenarios.filter(
        (scenario) => scenario.tags.includes('single') && scenario.phrasings === phrasings,
      )
      expect(single.map((scenario) => key(scenario.faults[0])).sort()).toEqual(ALL)
    }
  })

  it('has clean, multi-fault and prompt-injection inventories, and must-escalate cases', () => {
    const clean = suite.scenarios.filter((scenario) => scenario.faults.length === 0)
    expect(clean.length).toBeGreaterThanOrEqual(3)
    expect(clean.every((scenario) => scenario.tags.includes('clean'))).toBe(true)
    const multi = suite.scenarios.filter((scenario) => scenario.faults.length > 1)
    expect(multi.flatMap((scenario) => scenario.faults.map(key)).sort()).toEqual(ALL)
    const hostile = suite.scenarios.filter((scenario) => scenario.hostileText)
    expect(new Set(hostile.map((scenario) => scenario.faults[0].rule)).size).toBeGreaterThanOrEqual(8)
    expect(
      hostile.some(
        (scenario) => ROOT_CAUSES.find((cause) => key(cause) === key(scenario.faults[0]))!.expected === 'escalate',
      ),
    ).toBe(true)
    expect(suite.scenarios.filter((scenario) => scenario.tags.includes('escalate')).length).toBeGreaterThanOrEqual(20)
  })

  it("numbers every entity like the dataset's held-out split", () => {
    expect(suite.scenarios.every((scenario) => scenario.idBase === EVAL_ID_BASE)).toBe(true)
  })

  it('is versioned and identified by its content', () => {
    expect(suite.version).toBeGreaterThanOrEqual(1)
    expect(suiteHash(suite)).toMatch(/^[0-9a-f]{16}$/)
    expect(suiteHash({...suite, scenarios: suite.scenarios.slice(1)})).not.toBe(suiteHash(suite))
  })
})

describe('the dataset-eval suite', () => {
  it('rebuilds the sandbox inventories of datasets/eval.jsonl: every finding of the split is found there', async () => {
    const suite = loadSuite(DATASET_EVAL)
    const examples = readFileSync(EVAL_SPLIT, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as {input: {finding: {id: string}; context: {sandboxSeed: number}}})
    expect(new Set(suite.scenarios.map((scenario) => scenario.seed))).toEqual(
      new Set(examples.map((example) => example.input.context.sandboxSeed)),
    )
    const directory = temporaryDirectory()
    for (const scenario of suite.scenarios) {
      const built = await buildScenario(scenario, join(directory, scenario.id))
      expect(built.faults).toHaveLength(26)
      const wanted = examples
        .filter((example) => example.input.context.sandboxSeed === scenario.seed)
        .map((example) => example.input.finding.id)
      expect(wanted.length).toBeGreaterThan(0)
      for (const id of wanted) expect(built.findingsBefore, `${scenario.id}: ${id}`).toContain(id)
    }
  })
})

describe('suites drawn from a seed', () => {
  it('gives the same suite for the same seed and another for another seed', () => {
    expect(generateSuite({scenarios: 40, seed: 5})).toEqual(generateSuite({scenarios: 40, seed: 5}))
    expect(suiteHash(generateSuite({scenarios: 40, seed: 5}))).not.toBe(
      suiteHash(generateSuite({scenarios: 40, seed: 6})),
    )
  })

  it('mixes single, multi-fault, clean and hostile scenarios and covers every root cause', () => {
    const suite = generateSuite({scenarios: 200, seed: 1})
    expect(suite.scenarios).toHaveLength(200)
    const count = (tag: string) => suite.scenarios.filter((scenario) => scenario.tags.includes(tag)).length
    expect(count('clean')).toBe(20)
    expect(count('multi')).toBe(40)
    expect(count('hostile')).toBe(20)
    expect(count('single')).toBe(120)
    expect(count('heldout')).toBeGreaterThanOrEqual(60)
    expect([...new Set(suite.scenarios.flatMap((scenario) => scenario.faults.map(key)))].sort()).toEqual(ALL)
    expect(suite.scenarios.every((scenario) => scenario.idBase === EVAL_ID_BASE)).toBe(true)
  })
})

describe('suite validation', () => {
  const valid = {
    name: 't',
    version: 1,
    scenarios: [{id: 'a', seed: 1, faults: [{rule: 'duplicate_posting', rootCause: 'webhook_redelivery'}]}],
  }

  it('fills defaults', () => {
    expect(parseSuite(valid, 'test').scenarios[0]).toMatchObject({
      parts: 24,
      days: 10,
      phrasings: 'train',
      hostileText: false,
      tags: [],
    })
  })

  it('names the file, the place and the fix of every problem', () => {
    const unknownCause = {
      ...valid,
      scenarios: [{id: 'a', seed: 1, faults: [{rule: 'duplicate_posting', rootCause: 'webhook_redelivered'}]}],
    }
    expect(() => parseSuite(unknownCause, 's.json')).toThrow(
      /s\.json: scenarios\[0\] \("a"\)\.faults\[0\]: "webhook_redelivered" is not a root cause of duplicate_posting — did you mean "webhook_redelivery"\?/,
    )
    expect(() => parseSuite({...valid, scenarios: [valid.scenarios[0], valid.scenarios[0]]}, 's.json')).toThrow(
      /scenarios\[1\] \("a"\): id already used by scenarios\[0\]/,
    )
    const crowded = {
      ...valid,
      scenarios: [
        {
          id: 'a',
          seed: 1,
          parts: 4,
          faults: [valid.scenarios[0].faults[0], valid.scenarios[0].faults[0], valid.scenarios[0].faults[0]],
        },
      ],
    }
    expect(() => parseSuite(crowded, 's.json')).toThrow(/3 faults need at least 6 parts, got 4/)
    expect(() => parseSuite({...valid, scenarios: [{...valid.scenarios[0], plannedFaults: 3}]}, 's.json')).toThrow(
      /give either faults or plannedFaults, not both/,
    )
    expect(() =>
      parseSuite({...valid, scenarios: [{id: 'a', seed: 1, parts: 10, plannedFaults: 6}]}, 's.json'),
    ).toThrow(/6 faults need at least 12 parts, got 10/)
    expect(() => parseSuite({...valid, scenarios: [{id: 'a', seed: -1}]}, 's.json')).toThrow(
      /s\.json: scenarios\.0\.seed/,
    )
    expect(() => parseSuite({...valid, extra: 1}, 's.json')).toThrow(/Unrecognized key/)
  })

  it('reports a file that is not JSON', () => {
    const path = join(temporaryDirectory(), 'broken.json')
    writeFileSync(path, '{"name": ')
    expect(() => loadSuite(path)).toThrow(/broken\.json is not JSON/)
    expect(JSON.parse(readFileSync(SHIPPED, 'utf8')).name).toBe('default')
  })
})
