import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {InvagentCommand} from '../src/cli/base-command.js'
import {configFlag, inventoryFlag, selectInventory, sqliteDbFlag} from '../src/cli/inventory-flags.js'
import {modelsDirFlag} from '../src/cli/model-flags.js'
import {withInventoryCheck} from '../src/inventory/inventory-check.js'
import {runDoctor} from '../src/llama/doctor.js'
import {interruptScope} from '../src/process/interrupt.js'
import type {DoctorResult} from '../src/cli/output-schemas.js'

const MARK = {ok: 'ok     ', warn: 'warn   ', missing: 'MISSING'} as const

export default class Doctor extends InvagentCommand {
  static override summary = 'Check what this machine has for running a local model, and what to do about what it lacks.'
  static override description =
    'Checks Node.js, CPU threads, node-llama-cpp and its CPU binding, llama-server and ' +
    'llama-quantize (where they were found and their version), git/cmake/g++ for `invagent llama ' +
    'build`, the GGUF models in the models folder (and --model), the cache folder, and the ' +
    'configured inventory (reachable? SQLite or PostgreSQL, which version, how many rows, missing ' +
    'indexes). Each check is ok, warn or missing, and each engine is listed with what it lacks. ' +
    'Exits with 3 when a check is missing (Node.js too old, --model, --llama-server or ' +
    '--llama-quantize unusable, or a named inventory that cannot be used), 0 otherwise: the default ' +
    'engine (rules) needs nothing more, and what only the embedded or server engine needs is a ' +
    'warning. --json has every check as data either way.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --model models/tiny.gguf --json',
  ]
  static override flags = {
    inventory: inventoryFlag,
    db: sqliteDbFlag,
    config: configFlag,
    model: Flags.string({summary: 'A model to check too: a registered name or the path of a GGUF file.'}),
    'models-dir': modelsDirFlag,
    'llama-server': Flags.string({summary: 'Path of llama-server to check instead of the one found.'}),
    'llama-quantize': Flags.string({summary: 'Path of llama-quantize to check instead of the one found.'}),
  }

  async run(): Promise<DoctorResult> {
    const {flags} = await this.parse(Doctor)
    using interrupt = interruptScope()
    const {locator, source} = selectInventory(flags)
    const machine = await runDoctor({
      model: flags.model,
      modelsDir: flags['models-dir'] ? resolve(flags['models-dir']) : undefined,
      llamaServer: flags['llama-server'],
      llamaQuantize: flags['llama-quantize'],
      signal: interrupt.signal,
    })
    const report = await withInventoryCheck(machine, locator, source)
    for (const check of report.checks) {
      this.say(`${MARK[check.status]} ${check.id.padEnd(15)} ${check.detail}`)
      if (check.nextStep) this.say(`${' '.repeat(24)}→ ${check.nextStep}`)
    }
    this.say('\nengines:')
    for (const engine of report.engines)
      this.say(`  ${engine.engine.padEnd(9)} ${engine.ready ? 'ready' : `lacks ${engine.lacks.join('; ')}`}`)
    this.say(
      report.ok
        ? '\nReady (the default engine, rules, needs nothing more).'
        : '\nSomething required is missing: see the steps above.',
    )
    // The report is the output either way (also under --json); the exit code says whether it is complete.
    if (!report.ok) process.exitCode = 3
    return report
  }
}
