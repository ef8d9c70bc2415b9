import {relative} from 'node:path'

import type {ScrubChange, ScrubProgress, ScrubReport} from '../dataset/scrub.js'
import {formatBytes} from '../models/hash-progress.js'
import {renderTable} from './table.js'

/** What `dataset scrub` prints and returns: the values it replaced only when asked for (they are the PII). */
export interface ScrubOutput extends Omit<ScrubReport, 'changes'> {
  changes: Array<Omit<ScrubChange, 'before'> & {before?: string}>
}

/** Changes listed for people; `--json` has them all (up to --max-listed). */
const CHANGES_SHOWN = 50

export function scrubOutput(report: ScrubReport, showValues: boolean): ScrubOutput {
  return showValues ? report : {...report, changes: report.changes.map(({before: _before, ...change}) => change)}
}

function display(path: string): string {
  const relativePath = relative(process.cwd(), path)
  return relativePath !== '' && !relativePath.startsWith('..') ? relativePath : path
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`
}

export function renderScrubReport(output: ScrubOutput): string {
  const lines: string[] = []
  const shown = output.changes.slice(0, CHANGES_SHOWN)
  if (shown.length > 0) {
    const showValues = shown.some((change) => change.before !== undefined)
    const headers = showValues ? ['line', 'field', 'kind', 'before', 'after'] : ['line', 'field', 'kind', 'pseudonym']
    const rows = shown.map((change) => [
      String(change.line),
      change.pointer || '(the line)',
      change.kind,
      ...(showValues ? [change.before ?? ''] : []),
      change.after,
    ])
    lines.push(renderTable(headers, rows, 48))
    const more = output.changes.length - shown.length + output.changesNotListed
    if (more > 0) lines.push(`… and ${plural(more, 'more change', 'more changes')} (--json lists them)`)
    if (!showValues) lines.push('(the values replaced are not shown; --show-values prints them)')
    lines.push('')
  }
  for (const problem of output.unparsable)
    lines.push(`line ${problem.line}: ${problem.message}; left as it was, unscrubbed`)
  const unlisted = output.unparsableLines - output.unparsable.length
  if (unlisted > 0) lines.push(`… and ${plural(unlisted, 'more line', 'more lines')} that are not JSON`)
  if (output.unparsableLines > 0) lines.push('')
  const {email, phone, name} = output.counts
  const replaced =
    email + phone + name === 0
      ? 'no PII found'
      : `${plural(email, 'email', 'emails')}, ${plural(phone, 'phone number', 'phone numbers')}, ${plural(name, 'name', 'names')} replaced`
  lines.push(
    `${plural(output.lines, 'line', 'lines')}, ${output.linesChanged} changed: ${replaced} → ${display(output.output)}`,
  )
  if (output.unparsableLines > 0) {
    const them = output.unparsableLines === 1 ? 'it' : 'them'
    lines.push(
      `${plural(output.unparsableLines, 'line is', 'lines are')} not JSON and could not be scrubbed: fix or remove ${them} (\`invagent dataset validate\` says how) and scrub again.`,
    )
  }
  return lines.join('\n')
}

/** Files smaller than this scrub in about a second: no progress line for them. */
const PROGRESS_THRESHOLD_BYTES = 32 * 1024 * 1024

/** A self-overwriting progress line on a terminal; undefined when `stream` is not one. */
export function scrubProgressOnTerminal(stream: NodeJS.WriteStream): ((progress: ScrubProgress) => void) | undefined {
  if (!stream.isTTY) return undefined
  const started = Date.now()
  let last = 0
  return ({bytesRead, totalBytes, lines}) => {
    if (totalBytes < PROGRESS_THRESHOLD_BYTES) return
    if (bytesRead >= totalBytes) {
      stream.write('\r\u001B[2K')
      return
    }
    const now = Date.now()
    if (now - last < 100) return
    last = now
    const seconds = (now - started) / 1000
    stream.write(
      `\r\u001B[2Kscrub: ${Math.floor((bytesRead / totalBytes) * 100)}% (${formatBytes(bytesRead)} / ${formatBytes(totalBytes)}, ${lines.toLocaleString('en-US')} lines, ${seconds.toFixed(1)} s)`,
    )
  }
}
