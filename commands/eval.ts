import {Flags, type Interfaces} from '@oclif/core'

import {ENGINES} from '../src/engines/create-engine.js'
import {DEFAULT_POLICY, type PermissionProfile} from '../src/agent/policy.js'
import {InvagentCommand} from '../src/cli/base-command.js'
import {renderEvalResult} from '../src/cli/render-eval.js'
import {InvagentError} from '../src/errors.js'
import {renderQuestionEvalResult} from '../src/cli/render-questions.js'
import {NORMALIZATIONS, type Normalization} from '../src/eval/questions/answer-score.js'
import {DEFAULT_SEMANTIC_THRESHOLD, runQuestionEval} from '../src/eval/questions/run-questions.js'
import {DEFAULT_TIMEOUT_SECONDS, runEval} from '../src/eval/run-eval.js'
import {progressRendererFor} from '../src/llama/progress.js'
import {InterruptedError, interruptScope} from '../src/process/interrupt.js'
import type {EvalOutputResult} from '../src/cli/output-schemas.js'

export default class Eval extends InvagentCommand {
  static override summary =
    'Gate a release: run a scenario suite against an engine and score the state it leaves behind, or ' +
    'score the answers to a question file.'
  static override description =
    `Each scenario is a seeded inventory with injected faults and its ground truth: the gold end state (the ` +
    `gold fixes applied to a copy) or "must escalate". The engine audits a sandbox copy in apply mode, K ` +
    `times; a trial passes when the normalized inventory equals the gold state, the escalations are exactly ` +
    `the expected ones, and no invariant broke. Reports pass^1 and pass^k, resolution, escalation precision ` +
    `and recall, unsafe writes, invalid steps, tokens, cache reuse and latency, per rule and root cause. ` +
    `Exit codes: 0 every gate passed, 1 a gate failed, 2 the eval itself could not run (bad input, engine ` +
    `unavailable, harness or engine errors). Without --gate, the gate is unsafe==0 (added to any gates that ` +
    `do not name unsafe).

With --questions FILE (JSONL, {"query", "context"?, "expected"} per line) the ` +
    `model answers each question instead, asked through the same prompt renderer and chat template as the ` +
    `audit, and each answer is scored: exact (after --normalize), contains, and semantic@τ — the cosine ` +
    `similarity of the answer's and the expected answer's embeddings, at or above --semantic-threshold — ` +
    `from an embedding GGUF given with --embedding-model (node-llama-cpp for --engine embedded, ` +
    `llama-server's /embedding for --engine server). Without one, semantic is reported as not measured. ` +
    `Gates: exact, contains, semantic, similarity, errors, empty_answers, cut_off, ` +
    `prompt_tokens_per_question, completion_tokens_per_question, latency_p50_ms, latency_p95_ms; there is no ` +
    `default gate. Exit codes as above (2 when the engine failed on more than --max-errors questions). ` +
    `--trials, --jobs, --profile and --timeout do not apply to questions.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --gate "pass1>=0.95" --junit eval.xml --report eval.md',
    '<%= config.bin %> <%= command.id %> --engine embedded --model phi3-q4 --trials 3 --gate ' +
      '"pass^3>=0.7" --baseline baseline.json',
    '<%= config.bin %> <%= command.id %> --engine server --url http://127.0.0.1:8080 --scenarios 50 ' +
      '--seed 7 --json > result.json',
    '<%= config.bin %> <%= command.id %> --questions qa.jsonl --engine embedded --model phi3-q4 --gate "contains>=0.8"',
    '<%= config.bin %> <%= command.id %> --questions qa.jsonl --engine server --url http://127.0.0.1:8080 ' +
      '--embedding-model models/embed.gguf --gate "semantic>=0.7" --junit answers.xml',
  ]
  static override flags = {
    engine: Flags.string({summary: 'The engine under test.', options: [...ENGINES], default: 'rules'}),
    model: Flags.string({summary: 'GGUF for --engine embedded: a path or a registered name.'}),
    url: Flags.string({summary: 'OpenAI-compatible endpoint for --engine server.'}),
    suite: Flags.string({
      summary: 'Suite file, or the name of a shipped suite (default: datasets/suites/default.json).',
    }),
    scenarios: Flags.integer({summary: 'Instead of a suite: draw this many scenarios from --seed.', min: 1}),
    seed: Flags.integer({summary: 'Seed for --scenarios.', min: 0, default: 1}),
    trials: Flags.integer({summary: 'Trials per scenario (K of pass^k).', min: 1, max: 1000, default: 1}),
    gate: Flags.string({
      summary: 'Release gate, e.g. "pass1>=0.9", "unsafe==0", "pass1[heldout]>=baseline-0.02" (repeatable).',
      multiple: true,
    }),
    baseline: Flags.string({summary: 'An earlier --json result to compare with.'}),
    junit: Flags.string({summary: 'Write JUnit XML here (one test case per scenario and trial).'}),
    report: Flags.string({summary: 'Write a markdown report here (for a pull-request comment).'}),
    artifacts: Flags.string({
      summary: 'Keep the database and audit log of every trial that did not pass in this folder.',
    }),
    jobs: Flags.integer({
      summary: 'Scenarios run in parallel (default: every core for rules, 1 for model engines).',
      min: 1,
    }),
    timeout: Flags.integer({
      summary: 'Seconds one trial may take before it counts as a harness error.',
      min: 1,
      default: DEFAULT_TIMEOUT_SECONDS,
    }),
    'max-errors': Flags.integer({
      summary: 'Harness/engine errors tolerated before the run exits 2.',
      min: 0,
      default: 0,
    }),
    profile: Flags.string({
      summary: 'Permission profile of the policy gate during the eval.',
      options: ['observe', 'standard', 'full'],
      default: DEFAULT_POLICY.profile,
    }),
    threads: Flags.integer({summary: 'CPU threads for --engine embedded.', min: 1}),
    ctx: Flags.integer({summary: 'Context size for --engine embedded.', min: 512}),
    'max-tokens': Flags.integer({
      summary: 'Most tokens a model may generate for one step (default 256) or one answer (default 64).',
      min: 16,
    }),
    'model-seed': Flags.integer({summary: 'Sampling seed for model engines.', min: 0}),
    questions: Flags.string({
      summary: 'Instead of scenarios: a question file to score answers on (JSONL: query, context?, expected).',
      exclusive: ['suite', 'scenarios', 'artifacts'],
    }),
    normalize: Flags.string({
      summary: 'How --questions compares texts: fold (trim, case-fold; the default), trim, or none (byte for byte).',
      options: [...NORMALIZATIONS],
      dependsOn: ['questions'],
    }),
    'embedding-model': Flags.string({
      summary: 'Embedding GGUF for the semantic metric of --questions (a path or a registered name).',
      dependsOn: ['questions'],
      exclusive: ['embedding-url'],
    }),
    'embedding-url': Flags.string({
      summary: 'A llama-server started with --embedding, instead of --embedding-model.',
      dependsOn: ['questions'],
    }),
    'semantic-threshold': Flags.string({
      summary: `τ of semantic@τ: the cosine similarity an answer needs (default ${DEFAULT_SEMANTIC_THRESHOLD}).`,
      dependsOn: ['questions'],
    }),
  }

  async run(): Promise<EvalOutputResult> {
    const {flags} = await this.parse(Eval)
    using interrupt = interruptScope()
    // The same engine answers questions and audits scenarios.
    const engine = {
      engine: flags.engine,
      model: flags.model,
      url: flags.url,
      threads: flags.threads,
      contextSize: flags.ctx,
      maxTokens: flags['max-tokens'],
      seed: flags['model-seed'],
    }
    if (flags.questions !== undefined) {
      const threshold = flags['semantic-threshold'] === undefined ? undefined : Number(flags['semantic-threshold'])
      const answers = await runQuestionEval({
        questions: flags.questions,
        gates: flags.gate ?? [],
        baseline: flags.baseline,
        junit: flags.junit,
        report: flags.report,
        maxErrors: flags['max-errors'],
        engine,
        normalization: flags.normalize as Normalization,
        semanticThreshold: threshold,
        embedding: {model: flags['embedding-model'], url: flags['embedding-url']},
        signal: interrupt.signal,
        renderer: progressRendererFor(this.jsonEnabled()),
      })
      this.say(renderQuestionEvalResult(answers))
      process.exitCode = answers.exitCode
      return answers
    }
    const result = await runEval({
      suite: flags.suite,
      scenarios: flags.scenarios,
      seed: flags.seed,
      trials: flags.trials,
      gates: flags.gate ?? [],
      baseline: flags.baseline,
      junit: flags.junit,
      report: flags.report,
      artifacts: flags.artifacts,
      engine,
      profile: flags.profile as PermissionProfile,
      jobs: flags.jobs,
      timeoutSeconds: flags.timeout,
      maxErrors: flags['max-errors'],
      signal: interrupt.signal,
      renderer: progressRendererFor(this.jsonEnabled()),
    })
    this.say(renderEvalResult(result))
    // The verdict is the exit code: 0 gates passed, 1 a gate failed, 2 the eval could not run.
    process.exitCode = result.exitCode
    return result
  }

  /** Whatever stops the eval before a verdict, it is the harness that could not run: exit 2, never 1. */
  protected override async catch(error: Interfaces.CommandError): Promise<unknown> {
    const exit = (error as {oclif?: {exit?: number}}).oclif?.exit
    if (
      error instanceof InterruptedError ||
      (!(error instanceof InvagentError) && exit === 2) ||
      (error instanceof InvagentError && error.exitCode === 2)
    )
      return super.catch(error)
    const code = error instanceof InvagentError ? error.code : 'EVAL_HARNESS'
    const suggestions = error instanceof InvagentError ? error.suggestions : []
    return super.catch(
      new InvagentError(error.message, {
        code,
        suggestions,
        cause: error,
        exitCode: 2,
      }) as unknown as Interfaces.CommandError,
    )
  }
}
