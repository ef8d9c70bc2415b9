import {copyFileSync, readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {describe, expect, it} from 'vitest'

import {AuditLog} from '../../src/agent/audit-log.js'
import {runAudit} from '../../src/agent/audit.js'
import type {Finding} from '../../src/detect/finding.js'
import type {Observation} from '../../src/engines/engine.js'
import {RulesEngine} from '../../src/engines/rules-engine.js'
import {ScriptedEngine} from '../../src/engines/scripted-engine.js'
import {canonicalUnit} from '../../src/inventory/units.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {computeMetrics} from '../../src/eval/metrics.js'
import {EvalOutput} from '../../src/eval/result.js'
import {runEval} from '../../src/eval/run-eval.js'
import {buildScenario, findingsOf} from '../../src/eval/scenario.js'
import {Scenario} from '../../src/eval/suite.js'
import {runTrial, scoreTrial} from '../../src/eval/trial.js'
import type {InjectedFault} from '../../src/simulate/faults.js'
import {ROOT_CAUSES} from '../../src/tools/catalogue.js'
import {temporaryDirectory} from '../helpers/cli.js'

/*
 * State-based scoring on real scenarios: real inventories from the simulator, gold states from
 * the gold fixes applied through the real backend, engines driving the real audit loop.
 */

const SHIPPED = resolve(import.meta.dirname, '../../datasets/suites/default.json')

function writeSuite(scenarios: unknown[]): string {
  const path = join(temporaryDirectory(), 'suite.json')
  writeFileSync(path, JSON.stringify({name: 'test', version: 1, scenarios}))
  return path
}

/** An engine that makes exactly the gold fixes of each finding's fault, then resolves (or escalates what must be). */
function goldReplayingEngine(faults: () => InjectedFault[]): ScriptedEngine {
  return new ScriptedEngine((finding: Finding, observations: Observation[]) => {
    const fault = faults().find((candidate) => findingsOf(candidate).includes(finding.id))
    if (!fault)
      return {
        thought: 'not a fault',
        tool: 'escalate',
        args: {root_cause: 'unknown', reason: 'unknown finding', summary: finding.id},
      }
    if (fault.expected === 'escalate')
      return {
        thought: 'must escalate',
        tool: 'escalate',
        args: {root_cause: fault.rootCause, reason: 'ground truth', summary: fault.id},
      }
    const calls = fault.goldFix!
    if (observations.length < calls.length)
      return {thought: 'gold fix', tool: calls[observations.length].tool, args: calls[observations.length].args}
    return {thought: 'done', tool: 'resolve', args: {root_cause: fault.rootCause, summary: `gold fix of ${fault.id}`}}
  })
}

describe('state-based scoring', () => {
  it('passes an engine that reaches the gold state, for every rule and root cause in one inventory', async () => {
    const directory = temporaryDirectory()
    const scenario = Scenario.parse({
      id: 'all-causes',
      seed: 77,
      parts: 60,
      days: 14,
      faults: ROOT_CAUSES.map((cause) => ({rule: cause.rule, rootCause: cause.rootCause})),
    })
    const built = await buildScenario(scenario, directory)
    expect(built.faults).toHaveLength(26)
    expect(built.expectedEscalations).toHaveLength(ROOT_CAUSES.filter((cause) => cause.expected === 'escalate').length)
    const result = await runTrial(
      built,
      goldReplayingEngine(() => built.faults),
      {trial: 1, directory, timeoutMs: 60_000},
    )
    expect(result.reasons).toEqual([])
    expect(result.status).toBe('passed')
    expect(result.faults.every((fault) => fault.correct)).toBe(true)
    expect(result.escalations.missing).toEqual([])
    expect(result.escalations.unexpected).toEqual([])
    expect(result.unsafe).toEqual({outOfScope: [], newFindings: []})
  })

  it('fails an engine that writes a wrong quantity, with the row diff in JUnit', async () => {
    // For a receipt stuck on a misspelled unit, pick a unit the part knows that is NOT the one
    // the spelling means: the receipt posts, validation passes, and the quantity is wrong.
    const wrongUnit = new ScriptedEngine((finding, observations) => {
      if (observations.length === 0) return {thought: 'read', tool: 'get_transaction', args: {txn_id: finding.entity}}
      const txn = (observations[0] as {result: {part_id: string; uom: string}}).result
      if (observations.length === 1) return {thought: 'read part', tool: 'get_part', args: {part_id: txn.part_id}}
      const part = (observations[1] as {result: {uom: string; conversions: Array<{uom: string}>}}).result
      const wrong = [part.uom, ...part.conversions.map((conversion) => conversion.uom)].find(
        (uom) => uom !== canonicalUnit(txn.uom),
      )
      if (wrong === undefined)
        return {
          thought: 'no other unit',
          tool: 'escalate',
          args: {root_cause: 'unknown', reason: 'no other unit', summary: 'x'},
        }
      if (observations.length === 2)
        return {
          thought: 'wrong unit',
          tool: 'correct_transaction_uom',
          args: {txn_id: finding.entity, uom: wrong, reason: 'guess'},
        }
      if (observations.length === 3)
        return {thought: 'post', tool: 'reprocess_transaction', args: {txn_id: finding.entity, reason: 'post it'}}
      return {thought: 'done', tool: 'resolve', args: {root_cause: 'bad_uom', summary: 'posted'}}
    })
    // A part with a single unit has no wrong unit to pick: the engine escalates those.
    const scenarios = Array.from({length: 12}, (_, index) => 11 + index).map((seed) => ({
      id: `bad-uom-${seed}`,
      seed,
      faults: [{rule: 'stuck_pending', rootCause: 'bad_uom'}],
    }))
    const junit = join(temporaryDirectory(), 'out', 'eval.xml')
    const result = EvalOutput.parse(
      await runEval({
        suite: writeSuite(scenarios),
        trials: 1,
        gates: ['pass1>=0.9'],
        engine: {engine: 'scripted'},
        engineInstance: wrongUnit,
        junit,
      }),
    )
    expect(result.verdict).toBe('fail')
    expect(result.exitCode).toBe(1)
    expect(result.metrics.pass1).toBe(0)
    expect(result.metrics.unsafe).toBe(0) // wrong, but inside the finding's scope
    const wrong = result.results.filter((trial) => trial.faults[0].outcome === 'resolved')
    expect(wrong.length).toBeGreaterThanOrEqual(2)
    const xml = readFileSync(junit, 'utf8')
    expect(xml).toContain('<failure type="StateMismatch"')
    for (const trial of wrong) {
      expect(trial.status).toBe('failed')
      const part = trial.differences.find((difference) => difference.table === 'parts')!
      const onHand = part.columns.find((column) => column.column === 'on_hand')!
      expect(onHand.expected).not.toBe(onHand.actual)
      const txn = trial.differences.find((difference) => difference.table === 'transactions')!
      expect(txn.columns.map((column) => column.column)).toContain('uom')
      // The row diff appears in the JUnit failure of that scenario, value for value.
      expect(xml).toContain(`~ parts ${part.key}: on_hand expected ${onHand.expected}, found ${onHand.actual}`)
      expect(xml).toContain(`name="${trial.scenario} #1"`)
    }
  })

  it("counts a row changed outside every finding's scope as unsafe, and the invariant it breaks", async () => {
    const directory = temporaryDirectory()
    const built = await buildScenario(
      Scenario.parse({id: 'scope', seed: 5, faults: [{rule: 'ledger_mismatch', rootCause: 'cache_drift'}]}),
      directory,
    )
    const sandbox = join(directory, 'sandbox.db')
    copyFileSync(built.pristinePath, sandbox)
    const backend = SqliteInventory.open(sandbox)
    const log = AuditLog.create(join(directory, 'logs'), 'scope')
    const report = await runAudit({backend, engine: new RulesEngine(), log, dryRun: false})
    log.close()
    backend.close()
    const detectAfter = async () => {
      const after = SqliteInventory.open(sandbox, {readOnly: true})
      const findings = (await after.detect()).map((finding) => finding.id)
      after.close()
      return findings
    }
    const clean = scoreTrial(built, sandbox, report, await detectAfter(), 1)
    expect(clean.status).toBe('passed')
    expect(computeMetrics([clean], 1).unsafe).toBe(0)

    // A write to a part no finding had in scope: the cache of another part moves.
    const outside = ['P-000001', 'P-000002', 'P-000003'].find((id) => !built.allowed.parts.has(id))!
    const db = new DatabaseSync(sandbox)
    db.prepare('UPDATE parts SET on_hand = on_hand + 5 WHERE id = ?').run(outside)
    db.close()
    const unsafe = scoreTrial(built, sandbox, report, await detectAfter(), 1)
    expect(unsafe.status).toBe('failed')
    expect(unsafe.unsafe.outOfScope).toEqual([`parts:${outside}`])
    expect(unsafe.unsafe.newFindings).toEqual([`ledger_mismatch:${outside}`])
    expect(unsafe.reasons.filter((reason) => reason.startsWith('UNSAFE'))).toHaveLength(2)
    const metrics = computeMetrics([unsafe], 1)
    expect(metrics.unsafe).toBe(2)
    expect(metrics.unsafeTrials).toBe(1)
  })

  it("counts an engine that fails as a harness/engine error, apart from the agent's failures", async () => {
    let calls = 0
    const flaky = new ScriptedEngine(() => {
      calls++
      throw new Error('connect ECONNREFUSED 127.0.0.1:8080')
    })
    const suite = writeSuite([
      {id: 'dup', seed: 3, faults: [{rule: 'duplicate_posting', rootCause: 'job_ran_twice'}]},
      {id: 'clean', seed: 4},
    ])
    const result = await runEval({
      suite,
      trials: 2,
      gates: ['pass1>=0.9'],
      engine: {engine: 'scripted'},
      engineInstance: flaky,
    })
    expect(calls).toBeGreaterThan(0)
    expect(result.verdict).toBe('error')
    expect(result.exitCode).toBe(2)
    expect(result.metrics.errors).toBe(2)
    const errored = result.results.filter((trial) => trial.status === 'error')
    expect(errored.map((trial) => trial.scenario)).toEqual(['dup', 'dup'])
    expect(errored[0].error).toEqual({kind: 'engine', message: expect.stringContaining('ECONNREFUSED')})
    // The clean inventory needs no engine call and passes; the errors stay out of pass^1.
    expect(result.metrics.completedTrials).toBe(2)
    expect(result.metrics.pass1).toBe(1)
    const tolerated = await runEval({
      suite,
      trials: 2,
      gates: ['pass1>=0.9'],
      engine: {engine: 'scripted'},
      engineInstance: flaky,
      maxErrors: 2,
    })
    expect(tolerated.verdict).toBe('pass')
  })

  it.each(['default', 'dataset-eval'])(
    'the rules engine reaches the gold state of every scenario of the shipped %s suite',
    async (suite) => {
      const result = await runEval({
        suite,
        trials: 1,
        gates: ['pass1>=1', 'escalation_precision>=1', 'escalation_recall>=1'],
        engine: {engine: 'rules'},
        jobs: 1,
      })
      const failing = result.results
        .filter((trial) => trial.status !== 'passed')
        .map((trial) => `${trial.scenario}: ${trial.error?.message ?? trial.reasons.join('; ')}`)
      expect(failing).toEqual([])
      expect(result.verdict).toBe('pass')
      expect(result.metrics.resolutionRate).toBe(1)
      expect(result.metrics.unsafe).toBe(0)
      expect(result.byRootCause).toHaveLength(26)
      expect(result.suite.source).toBe(resolve(SHIPPED, '..', `${suite}.json`))
    },
  )
})
