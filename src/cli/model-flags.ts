import {Flags} from '@oclif/core'

import {MODELS_DIR_ENV} from '../models/models-directory.js'

/** `--models-dir`: the model registry's folder (see src/models/models-directory.ts). */
export const modelsDirFlag = Flags.string({
  summary: 'Folder of the model registry: GGUF files and their manifests.',
  description: `Defaults to models/ in the current folder; ${MODELS_DIR_ENV} overrides the default.`,
  env: MODELS_DIR_ENV,
})
