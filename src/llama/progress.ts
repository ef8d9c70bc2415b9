import type {ProgressRenderer} from './build.js'

/**
 * listr2's interactive renderer only on a terminal; the plain line-by-line one under --json, in
 * CI or when stderr is piped (a log file should not be full of cursor movements).
 */
export function progressRendererFor(json: boolean, env: NodeJS.ProcessEnv = process.env): ProgressRenderer {
  if (json || !process.stderr.isTTY) return 'simple'
  if (env.CI && env.CI !== 'false' && env.CI !== '0') return 'simple'
  return 'default'
}
