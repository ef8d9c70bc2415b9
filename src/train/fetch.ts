import {existsSync, renameSync, rmSync, statSync} from 'node:fs'

import {ExternalToolError} from '../errors.js'
import {sha256File} from '../models/hash-file.js'
import {quoteArgument} from '../process/run-process.js'
import type {JobTransport} from './transport.js'

/*
 * Brings a file back from the training host: into `<dest>.partial`, continuing what an earlier,
 * interrupted fetch left there, then checked against the sha256 the host computed, and only then
 * renamed to `dest`. A copy that does not match is deleted, so the next try starts clean.
 */

export interface FetchProgress {
  bytes: number
  total: number
}

export interface FetchResult {
  path: string
  sha256: string
  size: number
  /** Bytes that were already here from an earlier, interrupted fetch. */
  resumedFrom: number
}

/** Size and sha256 of a file on the host (sha256 from `<file>.sha256` when there is one, else computed there). */
export async function remoteFileDigest(
  transport: JobTransport,
  path: string,
  signal?: AbortSignal,
): Promise<{size: number; sha256: string}> {
  const quoted = quoteArgument(path)
  const script = `set -e; stat -c %s ${quoted}; if [ -f ${quoteArgument(`${path}.sha256`)} ]; then cat ${quoteArgument(`${path}.sha256`)}; else sha256sum ${quoted} | cut -d ' ' -f 1; fi`
  const result = await transport.exec(script, {signal, timeoutMs: 30 * 60_000})
  const [size, sha256] = result.stdout
    .trim()
    .split('\n')
    .map((line) => line.trim())
  if (!/^\d+$/.test(size ?? '') || !/^[0-9a-f]{64}$/.test(sha256 ?? '')) {
    throw new ExternalToolError(
      `cannot read the size and sha256 of ${path} on ${transport.description}: ${JSON.stringify(result.stdout.slice(0, 200))}`,
      {command: result.command},
    )
  }
  return {size: Number(size), sha256}
}

export async function fetchVerified(
  transport: JobTransport,
  remotePath: string,
  dest: string,
  options: {
    signal?: AbortSignal
    onProgress?: (progress: FetchProgress) => void
    expected?: {size: number; sha256: string}
  } = {},
): Promise<FetchResult> {
  const expected = options.expected ?? (await remoteFileDigest(transport, remotePath, options.signal))
  if (existsSync(dest)) {
    const size = statSync(dest).size
    if (size === expected.size && (await sha256File(dest, {signal: options.signal})) === expected.sha256)
      return {path: dest, sha256: expected.sha256, size, resumedFrom: size}
  }
  const partial = `${dest}.partial`
  let resumedFrom = existsSync(partial) ? statSync(partial).size : 0
  if (resumedFrom > expected.size) {
    // Longer than the original: not a prefix of it.
    rmSync(partial)
    resumedFrom = 0
  }
  const timer = options.onProgress
    ? setInterval(() => {
        const bytes = existsSync(partial) ? statSync(partial).size : 0
        options.onProgress!({bytes, total: expected.size})
      }, 500)
    : undefined
  try {
    await transport.download(remotePath, partial, {signal: options.signal})
  } finally {
    if (timer) clearInterval(timer)
  }
  const size = existsSync(partial) ? statSync(partial).size : 0
  options.onProgress?.({bytes: size, total: expected.size})
  const sha256 = size === expected.size ? await sha256File(partial, {signal: options.signal}) : null
  if (sha256 !== expected.sha256) {
    rmSync(partial, {force: true})
    const found =
      sha256 === null
        ? `${size} bytes arrived, ${expected.size} were expected`
        : `its sha256 is ${sha256}, the host's copy has ${expected.sha256}`
    throw new ExternalToolError(
      `the fetched ${remotePath} does not match the original on ${transport.description}: ${found}. The partial copy was deleted.`,
      {
        command: 'fetch',
        suggestions: ["Fetch it again: `invagent train --resume JOB` starts over from the host's copy."],
      },
    )
  }
  renameSync(partial, dest)
  return {path: dest, sha256, size, resumedFrom}
}
