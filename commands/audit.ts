import {confirm} from '@inquirer/prompts'
import {Flags} from '@oclif/core'

import {auditInventory, ENGINES} from '../src/agent/audit-session.js'
import type {Approver, AuditReport} from '../src/agent/audit.js'
import {DEFAULT_POLICY} from '../src/agent/policy.js'
import {InvagentCommand} from '../src/cli/base-command.js'
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
import {ensureDemoInventory} from '../src/inventory/demo.js'

export default class Audit extends InvagentCommand {
  static override summary = 'Detect discrepancies, troubleshoot them, apply safe fixes, validate them and escalate the rest.'
  static override description = `Runs the audit loop: every rule as SQL, then for each finding the engine troubleshoots through the read tools, proposes writes that pass the policy gate (permission profile, the finding's scope, bounds, approval above a bound), and resolves only when the rule and the part's invariants validate. Each finding is one unit of work: kept only when validated in apply mode; rolled back in --dry-run, on escalation and on failure. With no inventory at the default path, the demo inventory is created first. Every run appends a hash-chained log to the logs folder next to the database.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> <%= command.id %> --db inventory.db --max-findings 20 --json',
    '<%= config.bin %> <%= command.id %> --inventory postgres://postgres@127.0.0.1/inventory --dry-run',
    '<%= config.bin %> <%= command.id %> --rule negative_on_hand --rule ledger_mismatch --yes',
    '<%= config.bin %> <%= command.id %> --dry-run --engine embedded --model models/invagent-phi3-q4_k_m.gguf',
    '<%= config.bin %> <%= command.id %> --dry-run --engine server --url http://127.0.0.1:8080',
  ]
  static override flags = {
    inventory: inventoryFlag,
    db: sqliteDbFlag,
    config: configFlag,
    'dry-run': Flags.boolean({summary: 'Troubleshoot and validate every fix, then roll it back: not one byte of the database changes.', default: false}),
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
    rule: Flags.string({summary: 'Only these rules (repeatable).', multiple: true}),
    yes: Flags.boolean({summary: 'Approve writes above the approval bound without asking.', default: false}),
    profile: Flags.string({
      summary: `Permission profile: which write tools are allowed (default ${DEFAULT_POLICY.profile}).`,
      options: ['observe', 'standard', 'full'],
    }),
    'approve-above': Flags.integer({
      summary: `Writes moving stock by more than this need approval (default ${DEFAULT_POLICY.approveAbove}).`,
      min: 0,
    }),
  }

  async run(): Promise<AuditReport> {
    const {flags} = await this.parse(Audit)
    const rules = parseRuleNames(flags.rule)
    const {locator, source, config} = selectInventory(flags)
    const settings = auditSettings(flags, config?.config)
    if (source === 'default' && locator.kind === 'sqlite' && ensureDemoInventory(locator.path)) {
      this.notice(`No inventory configured: created the demo inventory at ${locator.path}`)
    }
    const interactive = !this.jsonEnabled() && Boolean(process.stdin.isTTY && process.stdout.isTTY)
    const approver: Approver | undefined = settings.yes
      ? async () => true
      : interactive
        ? async ({finding, tool, args, impact}) => confirm({message: `${finding.id}: ${tool} ${JSON.stringify(args)} moves stock by ${impact.onHandDelta || impact.reservedDelta}. Apply?`, default: false})
        : undefined
    const report = await auditInventory({
      inventory: locator,
      logDirectory: logDirectoryForLocator(locator),
      dryRun: flags['dry-run'],
      engine: settings.engine,
      rules,
      maxFindings: flags['max-findings'],
      policy: settings.policy,
      approver,
      onOutcome: (outcome, index, total) => {
        if (process.stderr.isTTY) this.notice(`[${index + 1}/${total}] ${outcome.findingId}: ${outcome.outcome}`)
      },
    })
    this.say(renderAuditReport(report))
    return report
  }
}
