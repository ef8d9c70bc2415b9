import {z} from 'zod'

/**
 * `invagent.yaml`: the settings a team keeps beside its inventory instead of repeating flags.
 * Keys are spelled like the flags they stand for. Every key is optional; a flag given on the
 * command line wins over the file, and the file over the built-in default.
 */
export const EngineConfig = z.strictObject({
  name: z.enum(['rules', 'embedded', 'server']).optional(),
  model: z.string().min(1).optional(),
  url: z.string().min(1).optional(),
  threads: z.int().min(1).optional(),
  ctx: z.int().min(512).optional(),
  'max-tokens': z.int().min(16).optional(),
  seed: z.int().min(0).optional(),
  /** A bearer token for the model server: only ever a `${ENV_VAR}` reference. */
  'api-key': z.string().min(1).optional(),
})

export const PolicyConfig = z.strictObject({
  profile: z.enum(['observe', 'standard', 'full']).optional(),
  'max-writes-per-finding': z.int().min(1).optional(),
  'max-writes-per-run': z.int().min(1).optional(),
  'max-impact': z.int().min(0).optional(),
})

export const ApprovalConfig = z.strictObject({
  /** Writes moving stock by more than this need a person's approval. */
  above: z.int().min(0).optional(),
  /** Approve every write above the bound without asking (as `--yes`). */
  yes: z.boolean().optional(),
})

export const InvagentConfig = z.strictObject({
  /** A locator: SQLite path or sqlite:PATH, postgres://…, http(s)://…; credentials as ${ENV_VAR}. */
  inventory: z.string().min(1).optional(),
  engine: EngineConfig.optional(),
  policy: PolicyConfig.optional(),
  approval: ApprovalConfig.optional(),
})

export type InvagentConfig = z.infer<typeof InvagentConfig>

/** Values that are secrets: written in the file only as `${ENV_VAR}` references. */
export const SECRET_KEYS: ReadonlyArray<readonly string[]> = [['engine', 'api-key']]
