import {resolve} from 'node:path'

/** The environment variable that moves the model registry away from ./models. */
export const MODELS_DIR_ENV = 'INVAGENT_MODELS_DIR'

/**
 * Where GGUF models and their manifests live: `INVAGENT_MODELS_DIR` when set, otherwise the
 * `models/` folder of the current directory (the repository's own `models/` when invagent runs
 * from its checkout, as `.invagent/inventory.db` is relative to it too). Always absolute.
 */
export function modelsDirectory(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const configured = env[MODELS_DIR_ENV]
  return resolve(cwd, configured && configured.trim() !== '' ? configured : 'models')
}

/**
 * The models folder from a `--models-dir` flag value (already defaulted from the environment by oclif), else the
 * default.
 */
export function modelsDirectoryFromFlag(flag: string | undefined): string {
  return flag ? resolve(flag) : modelsDirectory()
}
