import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import {dirname, join, resolve} from 'node:path'

import {scrubSecrets} from '../config/secrets.js'
import {InvagentError} from '../errors.js'
import {DEFAULT_SQLITE_PATH} from '../inventory/locator.js'

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

/** Audit logs live in a `logs` folder next to the database. */
export function logDirectoryFor(db: string): string {
  return join(dirname(resolve(db)), 'logs')
}
