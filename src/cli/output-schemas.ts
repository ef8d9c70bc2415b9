import {z} from 'zod'

import {PlanSchema} from '../agent/plan.js'
import {QuestionEvalOutput} from '../eval/questions/question-result.js'
import {EvalOutput} from '../eval/result.js'
import {ModelManifest} from '../models/manifest.js'
import {QUANT_TYPE_NAMES} from '../llama/quant-types.js'
import {toJsonSchema} from '../tools/json-schema.js'
import {RemoteStateSchema} from '../train/remote-control.js'
import {Approval, Escalation} from '../state/state-store.js'
import {RULES, ROOT_CAUSE_NAMES} from '../tools/catalogue.js'

/*
 * The --json output of every command is a contract for CI users: each is a zod schema here,
 * its JSON Schema is committed under schemas/, and a test fails when they drift apart.
 */

const rule = z.enum(RULES)
const evidence = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))

export const FindingOutput = z.object({
  id: z.string(),
  rule,
  entity: z.string(),
  severity: z.enum(['high', 'medium', 'low']),
  evidence,
})

export const DetectOutput = z.object({findings: z.array(FindingOutput)})

export const AuditOutput = z.object({
  runId: z.string(),
  dryRun: z.boolean(),
  engine: z.string(),
  db: z.string(),
  state: z.string().nullable(),
  logFile: z.string(),
  findingsDetected: z.number().int(),
  outcomes: z.array(
    z.object({
      findingId: z.string(),
      rule,
      entity: z.string(),
      rootCause: z.union([z.enum(ROOT_CAUSE_NAMES), z.literal('resolved_by_earlier_fix')]),
      outcome: z.enum(['resolved', 'would_resolve', 'parked', 'deferred', 'escalated', 'failed']),
      actions: z.array(z.object({tool: z.string(), args: z.record(z.string(), z.unknown()), applied: z.boolean()})),
      summary: z.string(),
      steps: z.number().int(),
      invalidSteps: z.number().int(),
      usage: z.object({
        promptTokens: z.number().int(),
        completionTokens: z.number().int(),
        cachedPromptTokens: z.number().int(),
      }),
      latencyMs: z.number().int(),
      needsApproval: z.boolean(),
      planId: z.string().nullable(),
      approvalId: z.string().nullable(),
      escalationId: z.string().nullable(),
      holdMs: z.number().nullable(),
      holdWorkMs: z.number().nullable(),
    }),
  ),
  summary: z.object({
    resolved: z.number().int(),
    wouldResolve: z.number().int(),
    parked: z.number().int(),
    deferred: z.number().int(),
    escalated: z.number().int(),
    failed: z.number().int(),
  }),
  deferredNote: z.string().nullable(),
})

const approvalShape = Approval
const escalationShape = Escalation

export const ApprovalsListOutput = z.object({state: z.string(), approvals: z.array(approvalShape)})
export const ApprovalsShowOutput = z.object({approval: approvalShape, plan: PlanSchema})
export const ApprovalsApproveOutput = z.object({
  approval: approvalShape,
  status: z.enum(['applied', 'stale', 'expired', 'failed', 'rejected']),
  appliedNow: z.boolean(),
  changes: z.array(z.string()),
  problems: z.array(z.string()),
  logFile: z.string().nullable(),
})
export const ApprovalsRejectOutput = z.object({approval: approvalShape, logFile: z.string()})
export const EscalationsListOutput = z.object({state: z.string(), escalations: z.array(escalationShape)})
export const EscalationsShowOutput = z.object({escalation: escalationShape})
export const EscalationsCloseOutput = z.object({escalation: escalationShape, logFile: z.string()})

export const InventoryInitOutput = z.object({
  db: z.string(),
  parts: z.number().int(),
  transactions: z.number().int(),
  faults: z.array(
    z.object({
      id: z.string(),
      rule,
      rootCause: z.string(),
      entity: z.string(),
      expected: z.enum(['fix', 'escalate']),
      alsoDetected: z.array(z.object({rule, entity: z.string()})),
      part: z.string().optional(),
      goldFix: z.array(z.object({tool: z.string(), args: z.record(z.string(), z.unknown())})).optional(),
    }),
  ),
})

export const ToolsOutput = z.object({
  tools: z.array(
    z.object({
      name: z.string(),
      effect: z.enum(['read', 'write', 'terminal']),
      description: z.string(),
      args: z.record(z.string(), z.unknown()),
      result: z.record(z.string(), z.unknown()),
    }),
  ),
})

export const LogVerifyOutput = z.object({
  ok: z.boolean(),
  files: z.array(
    z.object({
      file: z.string(),
      ok: z.boolean(),
      lines: z.number().int(),
      problem: z.object({line: z.number().int(), message: z.string()}).optional(),
    }),
  ),
})

export const InventoryIndexOutput = z.object({db: z.string(), created: z.array(z.string())})

const unregisteredModelFile = z.object({file: z.string(), path: z.string(), size: z.number().int()})

export const ModelsListOutput = z.object({
  directory: z.string(),
  models: z.array(
    ModelManifest.extend({
      manifestPath: z.string(),
      path: z.string(),
      status: z.enum(['ok', 'missing', 'size_mismatch']),
    }),
  ),
  unregistered: z.array(unregisteredModelFile),
  invalid: z.array(z.object({manifest: z.string(), error: z.string()})),
})

export const ModelsInspectOutput = z.object({
  path: z.string(),
  registryName: z.string().nullable(),
  manifest: z.string().nullable(),
  fileSize: z.number().int(),
  sha256: z.string().nullable(),
  ggufVersion: z.number().int(),
  architecture: z.string(),
  modelName: z.string().nullable(),
  parameterCount: z.number().int(),
  quantization: z.string(),
  tensorTypes: z.record(z.string(), z.number().int()),
  tensorCount: z.number().int(),
  contextLength: z.number().int().nullable(),
  embeddingLength: z.number().int().nullable(),
  blockCount: z.number().int().nullable(),
  vocabularySize: z.number().int().nullable(),
  tokenizer: z.string().nullable(),
  chatTemplate: z.object({present: z.boolean(), firstLine: z.string().nullable()}),
})

export const ModelsVerifyOutput = z.object({
  directory: z.string(),
  ok: z.boolean(),
  models: z.array(
    z.object({
      name: z.string(),
      manifest: z.string(),
      file: z.string().nullable(),
      ok: z.boolean(),
      problems: z.array(
        z.object({check: z.enum(['manifest', 'file', 'size', 'gguf', 'metadata', 'sha256']), message: z.string()}),
      ),
    }),
  ),
  unregistered: z.array(unregisteredModelFile),
})

export const ModelsAddOutput = z.object({manifest: ModelManifest, manifestPath: z.string(), path: z.string()})

export const LlamaBuildOutput = z.object({
  version: z.string(),
  llamaServerVersion: z.string(),
  key: z.string(),
  cacheDir: z.string(),
  sourceDir: z.string(),
  binaries: z.object({llamaServer: z.string(), llamaQuantize: z.string()}),
  built: z.boolean(),
  seconds: z.number(),
  nodeBinding: z
    .object({folder: z.string(), cached: z.string(), installed: z.string(), built: z.boolean(), restored: z.boolean()})
    .optional(),
})

const checkStatus = z.enum(['ok', 'warn', 'missing'])
const locatedBinary = z
  .object({
    path: z.string(),
    source: z.enum(['flag', 'env', 'path', 'cache']),
    version: z.string().nullable(),
    error: z.string().optional(),
  })
  .nullable()

export const DoctorOutput = z.object({
  ok: z.boolean(),
  checks: z.array(
    z.object({
      id: z.enum([
        'node',
        'cpu',
        'node-llama-cpp',
        'llama-server',
        'llama-quantize',
        'build-tools',
        'models',
        'cache',
        'inventory',
      ]),
      status: checkStatus,
      detail: z.string(),
      nextStep: z.string().optional(),
    }),
  ),
  engines: z.array(
    z.object({engine: z.enum(['rules', 'embedded', 'server']), ready: z.boolean(), lacks: z.array(z.string())}),
  ),
  node: z.object({version: z.string()}),
  cpu: z.object({threads: z.number().int(), model: z.string()}),
  nodeLlamaCpp: z.object({
    version: z.string().nullable(),
    bindingLoads: z.boolean(),
    buildType: z.string().nullable(),
    llamaCppRelease: z.string().nullable(),
    error: z.string().optional(),
  }),
  binaries: z.object({llamaServer: locatedBinary, llamaQuantize: locatedBinary}),
  models: z.array(
    z.object({
      path: z.string(),
      sizeBytes: z.number().int(),
      architecture: z.string().nullable(),
      name: z.string().nullable(),
      fileType: z.number().int().nullable(),
      error: z.string().optional(),
    }),
  ),
  cacheDir: z.string(),
  inventory: z.object({
    kind: z.enum(['sqlite', 'postgres', 'http']),
    locator: z.string(),
    source: z.enum(['flag --inventory', 'flag --db', 'env INVAGENT_INVENTORY', 'env INVAGENT_DB', 'config', 'default']),
    reachable: z.boolean(),
    server: z.string().nullable(),
    parts: z.number().int().nullable(),
    transactions: z.number().int().nullable(),
    missingIndexes: z.array(z.string()),
    error: z.string().optional(),
    nextStep: z.string().optional(),
  }),
})

/** `serve --json` writes JSON Lines: every line is one of these, the last one `stopped`. */
export const ServeOutput = z.discriminatedUnion('event', [
  z.object({
    event: z.literal('ready'),
    url: z.string(),
    openaiBaseUrl: z.string(),
    pid: z.number().int().nullable(),
    model: z.string(),
    host: z.string(),
    port: z.number().int(),
    ctxSize: z.number().int(),
    threads: z.number().int(),
    parallel: z.number().int(),
    llamaServer: z.string(),
    llamaServerSource: z.enum(['flag', 'env', 'path', 'cache']),
    args: z.array(z.string()),
    startupMs: z.number().int(),
    restarts: z.number().int(),
  }),
  z.object({
    event: z.literal('exited'),
    pid: z.number().int().nullable(),
    exitCode: z.number().int().nullable(),
    signal: z.string().nullable(),
    uptimeMs: z.number().int(),
  }),
  z.object({event: z.literal('restarting'), attempt: z.number().int(), delayMs: z.number().int()}),
  z.object({event: z.literal('stopped'), url: z.string(), restarts: z.number().int(), signal: z.string().nullable()}),
])

const quantizeResult = z.object({
  input: z.string(),
  output: z.string(),
  type: z.enum(QUANT_TYPE_NAMES),
  inputQuantization: z.string(),
  inputSize: z.number().int(),
  outputSize: z.number().int(),
  bitsPerWeight: z.number(),
  expectedBitsPerWeight: z.object({min: z.number(), max: z.number()}),
  tensorCount: z.number().int(),
  sha256: z.string(),
  seconds: z.number(),
  llamaQuantize: z.object({path: z.string(), source: z.enum(['flag', 'env', 'path', 'cache'])}),
})

export const QuantizeOutput = z.object({quantize: quantizeResult, registered: ModelsAddOutput})

const trainJobStatus = z.enum(['created', 'bundled', 'running', 'disconnected', 'failed', 'cancelled', 'complete'])
const trainRunner = z.enum(['ssh', 'local', 'bundle'])

export const TrainOutput = z.object({
  jobId: z.string(),
  jobDir: z.string(),
  status: trainJobStatus,
  runner: trainRunner,
  dryRun: z.boolean(),
  host: z.string().nullable(),
  remoteDir: z.string(),
  bundle: z.object({dir: z.string(), tarball: z.string(), sha256: z.string(), size: z.number().int()}).nullable(),
  plan: z.array(z.object({stage: z.string(), where: z.enum(['here', 'host']), description: z.string()})),
  commands: z.array(z.string()),
  models: z.array(
    z.object({
      name: z.string(),
      path: z.string(),
      quantization: z.string(),
      size: z.number().int(),
      sha256: z.string(),
    }),
  ),
  adapterDir: z.string().nullable(),
  trainLoss: z.number().nullable(),
  evalLoss: z.number().nullable(),
  warnings: z.array(z.string()),
})

const jobError = z.object({stage: z.string(), message: z.string()}).nullable()

export const TrainStatusOutput = z.union([
  z.object({
    jobId: z.string(),
    status: trainJobStatus,
    runner: trainRunner,
    host: z.string().nullable(),
    remoteDir: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    modelName: z.string(),
    stages: z.array(
      z.object({
        stage: z.string(),
        status: z.string(),
        detail: z.string().nullable(),
        startedAt: z.string().nullable(),
        finishedAt: z.string().nullable(),
      }),
    ),
    next: z.string().nullable(),
    lastLoss: z
      .object({step: z.number(), totalSteps: z.number(), loss: z.number(), epoch: z.number().optional()})
      .nullable(),
    lastEvalLoss: z.object({step: z.number(), loss: z.number()}).nullable(),
    remote: RemoteStateSchema.nullable(),
    remoteError: z.string().nullable(),
    error: jobError,
    models: z.array(z.string()),
  }),
  z.object({
    jobsDir: z.string(),
    jobs: z.array(
      z.object({
        jobId: z.string(),
        status: trainJobStatus,
        runner: trainRunner,
        createdAt: z.string(),
        modelName: z.string(),
      }),
    ),
  }),
])

export const TrainLogsOutput = z.object({
  jobId: z.string(),
  source: z.enum(['host', 'local']),
  lines: z.array(z.string()),
  remoteError: z.string().nullable(),
})

export const TrainCancelOutput = z.object({
  jobId: z.string(),
  outcome: z.enum(['cancelled', 'killed', 'not-running']),
  status: trainJobStatus,
})
const counts = z.record(z.string(), z.number().int())
const problemCode = z.enum([
  'blank-line',
  'comment',
  'trailing-comma',
  'invalid-json',
  'unknown-format',
  'schema',
  'unknown-tool',
  'invalid-args',
  'bad-call',
  'missing-observation',
  'unterminated',
  'terminal-not-last',
  'inconsistent',
  'duplicate-id',
  'duplicate-content',
  'leakage',
  'pii',
  'too-long',
  'bom',
  'empty',
  'nothing-kept',
])

export const DatasetValidateOutput = z.object({
  ok: z.boolean(),
  files: z.array(
    z.object({file: z.string(), lines: z.number().int(), examples: z.number().int(), problems: z.number().int()}),
  ),
  examples: z.number().int(),
  cleanExamples: z.number().int(),
  problems: z.array(
    z.object({
      file: z.string(),
      line: z.number().int(),
      column: z.number().int(),
      code: problemCode,
      message: z.string(),
      pointer: z.string().optional(),
    }),
  ),
  problemsOmitted: z.number().int(),
  problemCounts: z.partialRecord(problemCode, z.number().int()),
  summary: z.object({
    examples: z.number().int(),
    byFormat: counts,
    byRule: counts,
    byRootCause: counts,
    byTool: counts,
    byOutcome: counts,
    steps: counts,
  }),
  tokens: z
    .object({model: z.string(), maxTokens: z.number().int(), longest: z.number().int(), over: z.number().int()})
    .optional(),
  fix: z
    .object({
      out: z.string(),
      written: z.number().int(),
      converted: z.number().int(),
      dropped: z.array(z.object({file: z.string(), line: z.number().int(), reason: z.string()})),
      repaired: z.array(z.object({file: z.string(), line: z.number().int(), what: z.string()})),
    })
    .optional(),
})

export const DatasetGenerateOutput = z.object({
  seed: z.number().int(),
  train: z.object({file: z.string(), examples: z.number().int(), inventories: z.number().int()}),
  eval: z.object({file: z.string(), examples: z.number().int(), inventories: z.number().int()}),
  byRootCause: z.record(z.string(), z.object({train: z.number().int(), eval: z.number().int()})),
  skipped: z.number().int(),
})

export const DatasetExportOutput = z.object({
  input: z.string(),
  out: z.string(),
  format: z.enum(['chat', 'openai', 'sharegpt']),
  examples: z.number().int(),
  messages: z.number().int(),
  sha256: z.string(),
  template: z.object({model: z.string(), checked: z.number().int()}).optional(),
})

export const DatasetConvertOutput = z.object({
  input: z.string(),
  out: z.string(),
  lines: z.number().int(),
  converted: z.number().int(),
  failed: z.array(z.object({line: z.number().int(), reason: z.string()})),
})

export const DatasetAuthorOutput = z.object({
  appended: z.boolean(),
  out: z.string(),
  example: z.record(z.string(), z.unknown()).optional(),
  problems: z.array(z.string()),
})

export {EvalOutput, QuestionEvalOutput}

/** `eval --json`: a scenario eval, or with --questions an answer-level eval (its `kind` is "questions"). */
export const EvalCommandOutput = z.union([EvalOutput, QuestionEvalOutput])

const piiKind = z.enum(['email', 'phone', 'name'])

export const DatasetScrubOutput = z.object({
  input: z.string(),
  output: z.string(),
  inPlace: z.boolean(),
  lines: z.number().int(),
  linesChanged: z.number().int(),
  counts: z.object({email: z.number().int(), phone: z.number().int(), name: z.number().int()}),
  /** `before` (the PII itself) only with --show-values. */
  changes: z.array(
    z.object({
      line: z.number().int(),
      pointer: z.string(),
      kind: piiKind,
      before: z.string().optional(),
      after: z.string(),
    }),
  ),
  changesNotListed: z.number().int(),
  unparsableLines: z.number().int(),
  unparsable: z.array(z.object({line: z.number().int(), message: z.string()})),
})

/** What every command prints under --json when it fails, and nothing more (see the base command). */
export const ErrorOutput = z.object({
  error: z.object({code: z.string(), message: z.string(), suggestions: z.array(z.string())}),
})

/** `inventory serve --json` writes JSON Lines: `ready` once listening, `stopped` at the end. */
export const InventoryServeOutput = z.discriminatedUnion('event', [
  z.object({
    event: z.literal('ready'),
    url: z.string(),
    inventory: z.string(),
    host: z.string(),
    port: z.number().int(),
    auth: z.enum(['bearer', 'none']),
  }),
  z.object({event: z.literal('stopped'), url: z.string(), writes: z.number().int(), uptimeMs: z.number().int()}),
])

/** Command id → the schema of its --json output; `error` is the output of any command that fails. */
export const OUTPUT_SCHEMAS: Record<string, z.ZodType> = {
  error: ErrorOutput,
  audit: AuditOutput,
  'approvals list': ApprovalsListOutput,
  'approvals show': ApprovalsShowOutput,
  'approvals approve': ApprovalsApproveOutput,
  'approvals reject': ApprovalsRejectOutput,
  'escalations list': EscalationsListOutput,
  'escalations show': EscalationsShowOutput,
  'escalations close': EscalationsCloseOutput,
  detect: DetectOutput,
  tools: ToolsOutput,
  'inventory init': InventoryInitOutput,
  'inventory indexes': InventoryIndexOutput,
  'inventory serve': InventoryServeOutput,
  'log verify': LogVerifyOutput,
  'llama build': LlamaBuildOutput,
  doctor: DoctorOutput,
  serve: ServeOutput,
  'models add': ModelsAddOutput,
  'models inspect': ModelsInspectOutput,
  'models list': ModelsListOutput,
  'models verify': ModelsVerifyOutput,
  quantize: QuantizeOutput,
  train: TrainOutput,
  'train status': TrainStatusOutput,
  'train logs': TrainLogsOutput,
  'train cancel': TrainCancelOutput,
  'dataset validate': DatasetValidateOutput,
  'dataset generate': DatasetGenerateOutput,
  'dataset export': DatasetExportOutput,
  'dataset convert': DatasetConvertOutput,
  'dataset author': DatasetAuthorOutput,
  eval: EvalCommandOutput,
  'dataset scrub': DatasetScrubOutput,
}

export function outputJsonSchemas(): Record<string, unknown> {
  return Object.fromEntries(Object.entries(OUTPUT_SCHEMAS).map(([id, schema]) => [id, toJsonSchema(schema, 'output')]))
}

/*
 * The types of the --json results, derived from the schemas above: a command's run() returns one
 * of these, so its result and its contract cannot drift apart in type.
 */
export type ErrorResult = z.infer<typeof ErrorOutput>
export type DetectResult = z.infer<typeof DetectOutput>
export type AuditResult = z.infer<typeof AuditOutput>
export type ToolsResult = z.infer<typeof ToolsOutput>
export type InventoryInitResult = z.infer<typeof InventoryInitOutput>
export type InventoryIndexResult = z.infer<typeof InventoryIndexOutput>
export type LogVerifyResult = z.infer<typeof LogVerifyOutput>
export type LlamaBuildOutputResult = z.infer<typeof LlamaBuildOutput>
export type DoctorResult = z.infer<typeof DoctorOutput>
export type ServeResult = z.infer<typeof ServeOutput>
export type ModelsAddResult = z.infer<typeof ModelsAddOutput>
export type ModelsInspectResult = z.infer<typeof ModelsInspectOutput>
export type ModelsListResult = z.infer<typeof ModelsListOutput>
export type ModelsVerifyResult = z.infer<typeof ModelsVerifyOutput>
export type QuantizeResult = z.infer<typeof QuantizeOutput>
export type TrainResult = z.infer<typeof TrainOutput>
export type TrainStatusResult = z.infer<typeof TrainStatusOutput>
export type TrainLogsResult = z.infer<typeof TrainLogsOutput>
export type TrainCancelResult = z.infer<typeof TrainCancelOutput>
export type DatasetValidateResult = z.infer<typeof DatasetValidateOutput>
export type DatasetGenerateResult = z.infer<typeof DatasetGenerateOutput>
export type DatasetExportResult = z.infer<typeof DatasetExportOutput>
export type DatasetConvertResult = z.infer<typeof DatasetConvertOutput>
export type DatasetAuthorResult = z.infer<typeof DatasetAuthorOutput>
export type EvalOutputResult = z.infer<typeof EvalCommandOutput>
export type DatasetScrubResult = z.infer<typeof DatasetScrubOutput>
