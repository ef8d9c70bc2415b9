import type {HashProgress} from './hash-file.js'

/** Files smaller than this hash in well under a second: no progress line for them. */
const PROGRESS_THRESHOLD_BYTES = 64 * 1024 * 1024

/** A size for people: 1.23 GiB, 4.5 MiB, 812 B. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${bytes} B`
}

/**
 * A one-line, self-overwriting progress indicator for hashing big files, for a terminal only:
 * undefined when `stream` is not a TTY, so logs and CI output stay clean. At most ten updates a
 * second; the line is cleared when the file is done.
 */
export function hashProgressOnTerminal(stream: NodeJS.WriteStream, label: string): HashProgress | undefined {
  if (!stream.isTTY) return undefined
  let last = 0
  return (bytesRead, totalBytes) => {
    if (totalBytes < PROGRESS_THRESHOLD_BYTES) return
    const now = Date.now()
    if (bytesRead >= totalBytes) {
      stream.write('\r\u001B[2K')
      return
    }
    if (now - last < 100) return
    last = now
    const percent = Math.floor((bytesRead / totalBytes) * 100)
    stream.write(`\r\u001B[2K${label}: sha256 ${percent}% (${formatBytes(bytesRead)} / ${formatBytes(totalBytes)})`)
  }
}
