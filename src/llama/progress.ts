import {ListrLogger, ProcessOutput} from 'listr2'

import type {ProgressRenderer} from './build.js'

/**
 * The options every task list of invagent runs with: progress on stderr (stdout is reserved for
 * the command's result and --json), the plain renderer where the chosen one cannot draw, the
 * first error ends the list, and Ctrl+C stays with the command's own interrupt handling.
 */
export function listrOptions(renderer: ProgressRenderer) {
  const logger = new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)})
  return {
    renderer,
    fallbackRenderer: 'simple',
    rendererOptions: {logger},
    fallbackRendererOptions: {logger},
    exitOnError: true,
    registerSignalListeners: false,
  } as const
}

/**
 * listr2's interactive renderer only on a terminal; the plain line-by-line one under --json, in
 * CI or when stderr is piped (a log file should not be full of cursor movements).
 */
export function progressRendererFor(json: boolean, env: NodeJS.ProcessEnv = process.env): ProgressRenderer {
  if (json || !process.stderr.isTTY) return 'simple'
  if (env.CI && env.CI !== 'false' && env.CI !== '0') return 'simple'
  return 'default'
}
