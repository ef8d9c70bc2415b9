import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'

/** Called as hashing advances: bytes read so far and the file's size. */
export type HashProgress = (bytesRead: number, totalBytes: number) => void

/**
 * The SHA-256 of a file, streamed in 4 MiB chunks so a multi-gigabyte GGUF never sits in memory.
 * `onProgress` is called after every chunk; `signal` cancels the read.
 */
export async function sha256File(
  path: string,
  options: {onProgress?: HashProgress; signal?: AbortSignal} = {},
): Promise<string> {
  const {size} = await stat(path)
  const hash = createHash('sha256')
  let bytesRead = 0
  const stream = createReadStream(path, {highWaterMark: 4 * 1024 * 1024, signal: options.signal})
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk)
    bytesRead += chunk.length
    options.onProgress?.(bytesRead, size)
  }
  return hash.digest('hex')
}
