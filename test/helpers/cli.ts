import {createHash} from 'node:crypto'
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

import {execa} from 'execa'

import {assertJsonContract} from './json-contract.js'

const BIN = resolve(import.meta.dirname, '../../bin/run.js')

export interface CliResult {
  stdout: string
  stderr: string
  exitCode: number
  // The parsed --json output: each test narrows it with its command's zod schema.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read it as the schema they check
  json: any
}

/**
 * Runs the built CLI (bin/run.js → dist) in `cwd`, as a user would, without a TTY. With --json,
 * the raw stdout must conform to the command's committed JSON Schema (or the error schema): a
 * broken contract fails the test that ran the command.
 */
export async function runCli(args: string[], cwd: string, extraEnv: Record<string, string> = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = {...process.env}
  // The inventory a test means is the one it names, never one from the developer's shell.
  delete env.INVAGENT_DB
  delete env.INVAGENT_INVENTORY
  Object.assign(env, extraEnv)
  const result = await execa(process.execPath, [BIN, ...args], {cwd, env, reject: false, stdin: 'ignore'})
  let json: unknown
  if (args.includes('--json')) {
    assertJsonContract(args, result.stdout)
    try {
      json = JSON.parse(result.stdout)
    } catch {
      json = undefined
    }
  }
  return {stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1, json}
}

export function temporaryDirectory(prefix = 'invagent-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export function sha256OfFile(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}
