import {Args, Flags} from '@oclif/core'

import {TRAIN_JOBS_DIR_ENV} from '../train/job-store.js'

/** `--jobs-dir`: where training jobs keep their state, bundle and log. */
export const jobsDirFlag = Flags.string({
  summary: 'Folder of the training jobs (state, bundle, streamed log).',
  description: `Defaults to .invagent/train in the current folder; ${TRAIN_JOBS_DIR_ENV} overrides the default.`,
  env: TRAIN_JOBS_DIR_ENV,
})

export const jobIdArg = Args.string({
  description: 'The job id `invagent train` printed (train-YYYYMMDD-HHMMSS-xxxx).',
  required: true,
})
