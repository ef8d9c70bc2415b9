import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import {userInfo} from 'node:os'
import {dirname, join, resolve} from 'node:path'

import {scrubSecrets} from '../config/secrets.js'
import {didYouMean, InvagentError, UserError} from '../errors.js'
import {DEFAULT_SQLITE_PATH} from '../inventory/locator.js'
import {localPathOf, type LocatorInput} from '../inventory/open-inventory.js'
import {databaseLockedError, isSqliteBusy} from '../inventory/sqlite-connection.js'
import {defaultStateLocator} from '../state/open-state.js'
import {redactSecrets, secretValues} from '../util/secrets.js'
import type {ErrorResult} from './output-schemas.js'
import {escapeOutput} from './terminal-text.js'

export const DEFAULT_DB = DEFAULT_SQLITE_PATH

/**
 * The base of every invagent command: `--json` on all of them (the value `run()` returns is
 * the JSON output), and one mapping from invagent's errors to messages with next steps and
 * distinct exit codes.
 */
export abstract class InvagentCommand extends Command {
  static override enableJsonFlag = true

  /** All human output passes here: no secret of the environment and no control character reaches the terminal. */
  override log(message = '', ...args: unknown[]): void {
    super.log(escapeOutput(redactSecrets(String(message))), ...args)
  }

  override logToStderr(message = '', ...args: unknown[]): void {
    super.logToStderr(escapeOutput(redactSecrets(String(message))), ...args)
  }

  /** --json output: the same result with every secret of the environment redacted. */
  override logJson(json: unknown): void {
    super.logJson(withoutSecrets(json, secretValues()))
  }

  /** Human output only: silent under --json. */
  protected say(message = ''): void {
    if (!this.jsonEnabled()) this.log(message)
  }

  /** Progress and notices go to stderr, so stdout stays parseable. */
  protected notice(message: string): void {
    if (!this.jsonEnabled()) this.logToStderr(message)
  }

  protected override async catch(error: Interfaces.CommandError): Promise<unknown> {
    // this.exit() throws to unwind; it is no failure to describe.
    if ((error as {code?: unknown}).code === 'EEXIT') return super.catch(error)
    const {code, message, suggestions, exit} = describeError(error, Object.keys(this.ctor.flags ?? {}))
    const human = !this.jsonEnabled()
    const mapped = new Errors.CLIError(human ? escapeOutput(message) : message, {
      exit,
      code,
      suggestions: human ? suggestions.map(escapeOutput) : suggestions,
    })
    return super.catch(Object.assign(mapped, {oclif: {exit}}) as Interfaces.CommandError)
  }

  /**
   * The whole of an error under --json: code, message and next steps. Nothing else of the error
   * object (oclif's parse context holds every flag value, the environment's secrets among them, and
   * the home and config folders).
   */
  override toErrorJson(error: unknown): {error: ErrorJson} {
    const {code, message, suggestions} = describeError(error, Object.keys(this.ctor.flags ?? {}))
    return {error: {code, message, suggestions}}
  }
}

/** A copy of `value` with every secret of the environment redacted from its strings and keys. */
export function withoutSecrets(value: unknown, secrets: readonly string[] = secretValues()): unknown {
  if (secrets.length === 0) return value
  if (typeof value === 'string') return redactSecrets(value, secrets)
  if (Array.isArray(value)) return value.map((item) => withoutSecrets(item, secrets))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [redactSecrets(key, secrets), withoutSecrets(item, secrets)]),
    )
  }
  return value
}

/** The `error` object of a command's --json output when it fails (its schema is ErrorOutput). */
export type ErrorJson = ErrorResult['error']

/** "--dryrun": did you mean --dry-run? (oclif's NonExistentFlagsError lists the flags it did not know.) */
function flagSuggestions(error: unknown, flagNames: readonly string[]): string[] {
  const unknown = (error as {flags?: unknown}).flags
  if (!Array.isArray(unknown)) return []
  return unknown.flatMap((flag) => {
    const name = String(flag).replace(/^-+/, '').split('=')[0]
    const match =
      didYouMean(name, flagNames) ?? flagNames.find((known) => known.replaceAll('-', '') === name.replaceAll('-', ''))
    return match ? [`Did you mean --${match}? (see --help for every flag)`] : []
  })
}

/** oclif's own usage errors (unknown flag, missing argument, bad flag value) all exit 2. */
const USAGE_EXIT = 2

/**
 * What a user sees of any error: invagent's own as they are, oclif's usage errors and bugs with a code;
 * secrets redacted.
 */
export function describeError(error: unknown, flagNames: readonly string[] = []): ErrorJson & {exit: number} {
  // A lock met after the database was opened (a writer started meanwhile) surfaces as node:sqlite's own error.
  if (!(error instanceof InvagentError) && isSqliteBusy(error)) error = databaseLockedError('the database', error)
  const secrets = secretValues()
  // A value substituted from ${ENV_VAR} in invagent.yaml is a secret wherever a message quotes it.
  const clean = (text: string) => scrubSecrets(redactSecrets(text, secrets))
  if (error instanceof InvagentError) {
    return {
      code: error.code,
      message: clean(error.message),
      suggestions: error.suggestions.map(clean),
      exit: error.exitCode,
    }
  }
  const oclif = error as Partial<Errors.CLIError> & {oclif?: {exit?: number}; parse?: unknown}
  const message = clean(error instanceof Error ? error.message : String(error))
  const suggestions = Array.isArray(oclif.suggestions) ? oclif.suggestions.map(String).map(clean) : []
  if (oclif.parse !== undefined) {
    const next = [...flagSuggestions(error, flagNames), ...suggestions]
    if (next.length === 0) next.push('See `--help` for the flags and arguments.')
    return {code: 'USAGE_ERROR', message, suggestions: next, exit: oclif.oclif?.exit ?? USAGE_EXIT}
  }
  const code = typeof oclif.code === 'string' ? oclif.code : 'INTERNAL_ERROR'
  return {code, message, suggestions, exit: oclif.oclif?.exit ?? 1}
}

export const dbFlag = Flags.string({
  summary: 'Path of the inventory database.',
  description: 'Defaults to .invagent/inventory.db in the current folder; INVAGENT_DB overrides the default.',
  env: 'INVAGENT_DB',
  default: DEFAULT_DB,
})

export const stateFlag = Flags.string({
  summary: "Path of invagent's state store (plans, approvals, escalations, runs).",
  description:
    'Defaults to state.db beside the inventory (.invagent/state.db for the default one); ' +
    'INVAGENT_STATE overrides the default.',
  env: 'INVAGENT_STATE',
})

export const byFlag = Flags.string({summary: 'Who decides, for the log (default: the OS user).'})

/** Audit logs live in a `logs` folder next to the database (`.invagent/logs` for inventories that are not files). */
export function logDirectoryFor(db: LocatorInput): string {
  const path = localPathOf(db)
  return path === undefined ? join('.invagent', 'logs') : join(dirname(resolve(path)), 'logs')
}

/** The state store a command uses: --state, or the default beside the inventory. */
export function statePathFor(state: string | undefined, db: LocatorInput): string {
  return state ?? defaultStateLocator(db)
}

/** The OS user, the default author of a decision. */
export function currentUser(): string {
  try {
    return userInfo().username
  } catch {
    return process.env.USER ?? 'unknown'
  }
}

const DURATION_UNITS: Record<string, number> = {s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000}

/** Parses a duration such as `7d`, `12h`, `30m` or `45s` into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhd])$/.exec(text.trim())
  if (!match || Number(match[1]) <= 0) {
    throw new UserError(
      `"${text}" is not a duration: expected a positive number and a unit, such as 7d, 12h, 30m or 45s`,
      {code: 'BAD_DURATION'},
    )
  }
  return Number(match[1]) * DURATION_UNITS[match[2]]
}
