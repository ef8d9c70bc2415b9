import {Args, Flags} from '@oclif/core'

import {InvagentCommand} from '../../src/cli/base-command.js'
import {renderJobList, renderJobStatus} from '../../src/cli/render-train.js'
import {jobsDirFlag} from '../../src/cli/train-flags.js'
import {interruptScope} from '../../src/process/interrupt.js'
import {listTrainJobs, trainJobStatus, type JobStatusReport} from '../../src/train/job-control.js'
import {trainJobsDirectory} from '../../src/train/job-store.js'

export default class TrainStatus extends InvagentCommand {
  static override summary =
    "Show a training job's stages, last loss and what the host says; without JOB_ID, list the jobs."
  static override description =
    "Reads the job's recorded state and asks the host (over SSH for --runner ssh) whether run.sh is running, which stages it finished and how it ended. When the host cannot be reached, says so and shows what was recorded here."
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> train-20260131-142233-5f3a',
    '<%= config.bin %> <%= command.id %> train-20260131-142233-5f3a --offline --json',
  ]
  static override args = {jobId: Args.string({description: 'The job id; all jobs when left out.'})}
  static override flags = {
    'jobs-dir': jobsDirFlag,
    offline: Flags.boolean({summary: 'Do not contact the host: only the state recorded here.', default: false}),
  }

  async run(): Promise<JobStatusReport | {jobsDir: string; jobs: ReturnType<typeof listTrainJobs>}> {
    const {args, flags} = await this.parse(TrainStatus)
    const jobsDir = trainJobsDirectory(flags['jobs-dir'])
    if (args.jobId === undefined) {
      const jobs = listTrainJobs(jobsDir)
      this.say(renderJobList(jobsDir, jobs))
      return {jobsDir, jobs}
    }
    using interrupt = interruptScope()
    const report = await trainJobStatus(jobsDir, args.jobId, {offline: flags.offline, signal: interrupt.signal})
    this.say(renderJobStatus(report))
    return report
  }
}
