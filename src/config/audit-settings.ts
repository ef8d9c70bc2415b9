import {DEFAULT_POLICY, type PermissionProfile, type PolicyOptions} from '../agent/policy.js'
import type {EngineOptions} from '../engines/create-engine.js'
import type {InvagentConfig} from './schema.js'

/** The audit's flags that the config file may also set; undefined means "not given on the command line". */
export interface AuditSettingFlags {
  engine?: string
  model?: string
  url?: string
  threads?: number
  ctx?: number
  'max-tokens'?: number
  seed?: number
  profile?: string
  'approve-above'?: number
  yes?: boolean
}

export const DEFAULT_MAX_TOKENS = 256

/** Flag, else config file, else built-in default: for the engine, the policy gate and approvals. */
export function auditSettings(
  flags: AuditSettingFlags,
  config: InvagentConfig = {},
): {engine: EngineOptions; policy: PolicyOptions; yes: boolean} {
  const engine = config.engine ?? {}
  const policy = config.policy ?? {}
  const approval = config.approval ?? {}
  return {
    engine: {
      engine: flags.engine ?? engine.name ?? 'rules',
      model: flags.model ?? engine.model,
      url: flags.url ?? engine.url,
      threads: flags.threads ?? engine.threads,
      contextSize: flags.ctx ?? engine.ctx,
      maxTokens: flags['max-tokens'] ?? engine['max-tokens'] ?? DEFAULT_MAX_TOKENS,
      seed: flags.seed ?? engine.seed,
      apiKey: engine['api-key'],
    },
    policy: {
      profile: (flags.profile ?? policy.profile ?? DEFAULT_POLICY.profile) as PermissionProfile,
      maxWritesPerFinding: policy['max-writes-per-finding'] ?? DEFAULT_POLICY.maxWritesPerFinding,
      maxWritesPerRun: policy['max-writes-per-run'] ?? DEFAULT_POLICY.maxWritesPerRun,
      maxImpact: policy['max-impact'] ?? DEFAULT_POLICY.maxImpact,
      approveAbove: flags['approve-above'] ?? approval.above ?? DEFAULT_POLICY.approveAbove,
    },
    yes: Boolean(flags.yes) || (approval.yes ?? false),
  }
}
