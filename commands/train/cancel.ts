import {Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {renderCancel} from '../../src/cli/render-train.js'
import {jobIdArg, jobsDirFlag} from '../../src/cli/train-flags.js'
import {interruptScope} from '../../src/process/interrupt.js'
import {cancelTrainJob, type CancelResult} from '../../src/train/job-control.js'
import {trainJobsDirectory} from '../../src/train/job-store.js'

export default class TrainCancel extends InvagentCommand {
  static override summary = 'Stop a training job on its host (run.sh and everything it started).'
  static override description =
    "Sends SIGTERM to the job's process group on the host, then SIGKILL after the grace period. Finished stages stay finished: `invagent train --resume JOB` continues later, and an interrupted train stage continues from its last checkpoint."
  static override examples = [
    '<%= config.bin %> <%= command.id %> train-20260131-142233-5f3a',
    '<%= config.bin %> <%= command.id %> train-20260131-142233-5f3a --grace 60 --json',
  ]
  static override args = {jobId: jobIdArg}
  static override flags = {
    'jobs-dir': jobsDirFlag,
    grace: Flags.integer({summary: 'Seconds to wait after SIGTERM before SIGKILL.', default: 20, min: 1}),
  }

  async run(): Promise<CancelResult> {
    const {args, flags} = await this.parse(TrainCancel)
    using interrupt = interruptScope()
    const result = await cancelTrainJob(trainJobsDirectory(flags['jobs-dir']), args.jobId, {
      graceSeconds: flags.grace,
      signal: interrupt.signal,
    })
    this.say(renderCancel(result))
    return result
  }
}
