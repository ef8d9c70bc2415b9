import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import {userInfo} from 'node:os'
import {dirname, join, resolve} from 'node:path'

import {scrubSecrets} from '../config/secrets.js'
import {InvagentError, UserError} from '../errors.js'
import {DEFAULT_SQLITE_PATH} from '../inventory/locator.js'
import {localPathOf, type LocatorInput} from '../inventory/open-inventory.js'
import {defaultStateLocator} from '../state/open-state.js'

export const DEFAULT_DB = DEFAULT_SQLITE_PATH

/**
 * The base of every invagent command: `--json` on all of them (the value `run()` returns is
 * the JSON output), and one mapping from invagent's errors to messages with next steps and
 * distinct exit codes.
 */
export abstract class InvagentCommand extends Command {
  static override enableJsonFlag = true

  /** Human output only: silent under --json. */
  protected say(message = ''): void {
    if (!this.jsonEnabled()) this.log(message)
  }

  /** Progress and notices go to stderr, so stdout stays parseable. */
  protected notice(message: string): void {
    if (!this.jsonEnabled()) this.logToStderr(message)
  }

  protected override async catch(error: Interfaces.CommandError): Promise<unknown> {
    // A value substituted from ${ENV_VAR} in invagent.yaml is a secret wherever a message quotes it.
    error.message = scrubSecrets(error.message)
    if (error instanceof InvagentError) {
      const suggestions = error.suggestions.map(scrubSecrets)
      const mapped = new Errors.CLIError(error.message, {exit: error.exitCode, code: error.code, suggestions})
      return super.catch(Object.assign(mapped, {oclif: {exit: error.exitCode}}) as Interfaces.CommandError)
    }
    return super.catch(error)
  }
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
    'Defaults to state.db beside the inventory (.invagent/state.db for the default one); INVAGENT_STATE overrides the default.',
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
