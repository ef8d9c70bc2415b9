import {Args} from '@oclif/core'

import {InvagentCommand, dbFlag, logDirectoryFor} from '../../src/cli/base-command.js'
import {verifyLogs, type VerifyLogsResult} from '../../src/agent/verify-logs.js'

export default class LogVerify extends InvagentCommand {
  static override summary = 'Verify the hash chain of audit logs.'
  static override description =
    "Checks every line of a log (or of every log in the logs folder next to the database): valid JSON, consecutive sequence numbers, each line's hash and its link to the line before, and a final run-finished line. Reports the first broken or missing line and exits 1 when any log is broken."
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> .invagent/logs/audit-20260131T120000Z-1a2b3c4d.jsonl --json',
  ]
  static override args = {file: Args.string({description: 'One log file; all logs of the inventory when omitted.'})}
  static override flags = {db: dbFlag}

  async run(): Promise<VerifyLogsResult> {
    const {args, flags} = await this.parse(LogVerify)
    const result = verifyLogs(args.file ? [args.file] : undefined, logDirectoryFor(flags.db))
    for (const file of result.files) {
      this.say(
        file.ok
          ? `ok      ${file.file} (${file.lines} lines)`
          : `BROKEN  ${file.file}:${file.problem!.line}: ${file.problem!.message}`,
      )
    }
    this.say(
      result.ok
        ? `${result.files.length} log(s) verified.`
        : `${result.files.filter((file) => !file.ok).length} of ${result.files.length} log(s) broken.`,
    )
    if (!result.ok) process.exitCode = 1
    return result
  }
}
