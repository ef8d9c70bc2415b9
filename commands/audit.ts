import {confirm} from '@inquirer/prompts'
import {Flags} from '@oclif/core'

import {auditExitCode, auditInventory} from '../src/agent/audit-session.js'
import type {Approver} from '../src/agent/audit.js'
import {DEFAULT_POLICY} from '../src/agent/policy.js'
import {InvagentCommand, parseDuration, stateFlag, statePathFor} from '../src/cli/base-command.js'
import {
  configFlag,
  inventoryFlag,
  logDirectoryForLocator,
  selectInventory,
  sqliteDbFlag,
} from '../src/cli/inventory-flags.js'
import {auditSettings, DEFAULT_MAX_TOKENS} from '../src/config/audit-settings.js'
import {renderAuditReport} from '../src/cli/render.js'
import {parseRuleNames} from '../src/detect/rules.js'
import {ENGINES} from '../src/engines/create-engine.js'
import {ensureDemoInventory} from '../src/inventory/demo.js'
import {AuditOutput, type AuditResult} from '../src/cli/output-schemas.js'

export default class Audit extends InvagentCommand {
  static override summary =
    'Detect discrepancies, plan fixes in a sandbox, apply validated plans in short units, park or escalate the rest.'
  static override description =
    'Runs the audit loop: every rule as SQL, then for each finding the engine troubleshoots against ' +
    `a sandbox copy of the finding's scope (reads see the inventory, writes stay in the sandbox), ` +
    'every write passes the policy gate, and the fix must validate there. The result is a plan; in ' +
    'apply mode it is applied in one short unit that first checks nothing it read has changed, then ' +
    'validates again on the live data. Plans that need a person (above --approve-above, or all with ' +
    '--approve all) are asked for at a terminal, otherwise parked: see `invagent approvals`. ' +
    'Escalations are queued: see `invagent escalations`. --dry-run stops after the plan: not one ' +
    'byte of the inventory changes. Exit codes: 0 every finding resolved, escalated, parked or ' +
    'deferred; 1 any failed; 2 bad input; 3 unusable inventory or state.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> <%= command.id %> --db inventory.db --max-findings 20 --json',
    '<%= config.bin %> <%= command.id %> --inventory postgres://postgres@127.0.0.1/inventory --dry-run',
    '<%= config.bin %> <%= command.id %> --rule negative_on_hand --rule ledger_mismatch --yes',
    '<%= config.bin %> <%= command.id %> --approve all --ttl 2d',
    '<%= config.bin %> <%= command.id %> --dry-run --engine embedded --model models/invagent-phi3-q4_k_m.gguf',
    '<%= config.bin %> <%= command.id %> --dry-run --engine server --url http://127.0.0.1:8080',
  ]
  static override flags = {
    inventory: inventoryFlag,
    db: sqliteDbFlag,
    config: configFlag,
    state: stateFlag,
    'dry-run': Flags.boolean({
      summary: 'Plan and validate every fix in a sandbox, apply nothing: not one byte of the inventory changes.',
      default: false,
    }),
    engine: Flags.string({
      summary: 'Who decides the next step: the rules playbook (default), a GGUF in-process, or a model server.',
      options: [...ENGINES],
    }),
    model: Flags.string({summary: 'GGUF model for --engine embedded: a path or a name from `invagent models list`.'}),
    url: Flags.string({summary: 'OpenAI-compatible endpoint for --engine server (llama-server first).'}),
    threads: Flags.integer({summary: 'CPU threads for --engine embedded (default: all cores).', min: 1}),
    ctx: Flags.integer({summary: 'Context size for --engine embedded.', min: 512}),
    'max-tokens': Flags.integer({
      summary: `Most tokens a model may generate for one step (default ${DEFAULT_MAX_TOKENS}).`,
      min: 16,
    }),
    seed: Flags.integer({summary: 'Sampling seed for model engines.', min: 0}),
    'max-findings': Flags.integer({summary: 'Audit at most this many findings (most severe first).', min: 1}),
    'max-writes': Flags.integer({
      summary:
        'Apply at most this many writes in this run; later findings are deferred to the next run ' +
        `(default ${DEFAULT_POLICY.maxWritesPerRun}).`,
      min: 0,
    }),
    rule: Flags.string({summary: 'Only these rules (repeatable).', multiple: true}),
    yes: Flags.boolean({summary: 'Approve plans that need approval without asking.', default: false}),
    profile: Flags.string({
      summary: `Permission profile: which write tools are allowed (default ${DEFAULT_POLICY.profile}).`,
      options: ['observe', 'standard', 'full'],
    }),
    'approve-above': Flags.integer({
      summary:
        'Plans with a write moving stock by more than this need approval ' +
        `(default ${DEFAULT_POLICY.approveAbove}).`,
      min: 0,
    }),
    approve: Flags.string({
      summary: 'Which plans need approval: those above --approve-above (bound), or every plan with writes (all).',
      options: ['bound', 'all'],
      default: 'bound',
    }),
    ttl: Flags.string({summary: 'How long a parked plan waits for a decision (e.g. 7d, 12h).', default: '7d'}),
    'step-delay': Flags.integer({
      summary: 'Wait this many milliseconds before each engine step (stands in for a slow model).',
      min: 0,
      hidden: true,
    }),
  }

  async run(): Promise<AuditResult> {
    const {flags} = await this.parse(Audit)
    const rules = parseRuleNames(flags.rule)
    const ttlMs = parseDuration(flags.ttl)
    const {locator, source, config} = selectInventory(flags)
    const settings = auditSettings(flags, config?.config)
    if (source === 'default' && locator.kind === 'sqlite' && ensureDemoInventory(locator.path)) {
      this.notice(`No inventory configured: created the demo inventory at ${locator.path}`)
    }
    const interactive = !this.jsonEnabled() && Boolean(process.stdin.isTTY && process.stdout.isTTY)
    const approver: Approver | undefined = settings.yes
      ? async () => true
      : interactive
        ? async (plan) =>
            confirm({
              message:
                `${plan.findingId}: ` +
                `${plan.writes.map((write) => `${write.tool} ${JSON.stringify(write.args)}`).join('; ')} ` +
                `moves stock by up to ${plan.maxImpact}. Apply?`,
              default: false,
            })
        : undefined
    const report = await auditInventory({
      inventory: locator,
      state: statePathFor(flags.state, locator),
      logDirectory: logDirectoryForLocator(locator),
      dryRun: flags['dry-run'],
      engine: {...settings.engine, stepDelayMs: flags['step-delay']},
      rules,
      maxFindings: flags['max-findings'],
      policy: {...settings.policy, maxWritesPerRun: flags['max-writes'] ?? settings.policy.maxWritesPerRun},
      approver,
      approveAll: flags.approve === 'all',
      approvalTtlMs: ttlMs,
      onOutcome: (outcome, index, total) => {
        if (process.stderr.isTTY) this.notice(`[${index + 1}/${total}] ${outcome.findingId}: ${outcome.outcome}`)
      },
    })
    this.say(renderAuditReport(report))
    process.exitCode = auditExitCode(report)
    // The report's own type is looser (rootCause: string); the contract is the schema.
    return AuditOutput.parse(report)
  }
}
