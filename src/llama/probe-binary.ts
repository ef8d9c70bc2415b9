import {ExternalToolError} from '../errors.js'
import {runProcess} from '../process/run-process.js'
import type {LlamaBinaryName} from './cache.js'

/**
 * Checks that a llama.cpp tool runs, and returns its version where it has one. llama-server
 * prints `version: 1 (de3ff81)` (then `built with …`) for `--version`. llama-quantize has no
 * version flag: `--help` prints its usage and exits with 1, which is as much as it can say, so
 * its version is null. Throws ExternalToolError when the binary does not run: a binary that
 * cannot print its version or usage cannot serve or quantize either.
 */
export async function probeLlamaBinary(
  name: LlamaBinaryName,
  path: string,
  options: {signal?: AbortSignal} = {},
): Promise<string | null> {
  if (name === 'llama-quantize') {
    const result = await runProcess(path, ['--help'], {timeoutMs: 20_000, signal: options.signal, okExitCodes: [0, 1]})
    if (!/usage:/i.test(`${result.stdout}\n${result.stderr}`)) {
      throw new ExternalToolError(`${result.command} did not print llama-quantize's usage`, {
        command: result.command,
        exitCode: result.exitCode,
        stderrTail: result.stderr,
      })
    }
    return null
  }
  const result = await runProcess(path, ['--version'], {timeoutMs: 20_000, signal: options.signal})
  const lines = `${result.stdout}\n${result.stderr}`
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
  const versionLine = lines.find((line) => /^version:/i.test(line)) ?? lines[0] ?? 'unknown'
  return versionLine.replace(/^version:\s*/i, '')
}
