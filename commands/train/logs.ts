import {Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {jobIdArg, jobsDirFlag} from '../../src/cli/train-flags.js'
import {interruptScope} from '../../src/process/interrupt.js'
import {trainJobLogs, type JobLogsResult} from '../../src/train/job-control.js'
import {trainJobsDirectory} from '../../src/train/job-store.js'

export default class TrainLogs extends InvagentCommand {
  static override summary = "Print a training job's log (run.log on the host, or the copy streamed here)."
  static override description =
    'Progress lines start with "@@invagent " and hold one JSON event (stage-start, loss, eval, …). With --follow, keeps printing until the job stops running (Ctrl+C leaves it running). When the host cannot be reached, prints the copy streamed here and says so on stderr.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> train-20260131-142233-5f3a',
    '<%= config.bin %> <%= command.id %> train-20260131-142233-5f3a --follow',
    '<%= config.bin %> <%= command.id %> train-20260131-142233-5f3a --lines 20 --json',
  ]
  static override args = {jobId: jobIdArg}
  static override flags = {
    'jobs-dir': jobsDirFlag,
    lines: Flags.integer({summary: 'How many of the last lines to print.', default: 100, min: 1}),
    follow: Flags.boolean({summary: 'Keep printing new lines until the job stops running.', default: false}),
  }

  async run(): Promise<JobLogsResult> {
    const {args, flags} = await this.parse(TrainLogs)
    using interrupt = interruptScope()
    const result = await trainJobLogs(trainJobsDirectory(flags['jobs-dir']), args.jobId, {
      lines: flags.lines,
      follow: flags.follow,
      signal: interrupt.signal,
      onLine: (line) => this.say(line),
    })
    if (result.remoteError)
      this.notice(`(the host's log could not be read: ${result.remoteError}; this is the copy streamed here)`)
    return result
  }
}
