import {Errors, type Hook} from '@oclif/core'

import {didYouMean} from '../errors.js'

/**
 * `invagent audti` and `invagent dataset valdate x.jsonl`: the closest command, as a did-you-mean.
 * oclif joins every word of the command line into the id ("dataset:valdate:x.jsonl"), so the
 * shortest leading words that come close to a command are taken.
 */
export function suggestCommand(id: string, commandIds: readonly string[]): string | undefined {
  const words = id.split(':')
  for (let length = 1; length <= Math.min(words.length, 3); length++) {
    const candidate = words.slice(0, length).join(':')
    const sameDepth = commandIds.filter((command) => command.split(':').length === length)
    const match = didYouMean(candidate, sameDepth)
    if (match !== undefined && match !== candidate) return match
  }
  return undefined
}

const hook: Hook.CommandNotFound = async function (options) {
  const spaced = (id: string) => id.replaceAll(':', ' ')
  const typed = spaced(options.id)
  const match = suggestCommand(options.id, options.config.commandIDs)
  const suggestions = match ? [`Did you mean \`${options.config.bin} ${spaced(match)}\`?`] : []
  suggestions.push(`See \`${options.config.bin} --help\` for every command.`)
  const message = `"${typed}" is not an invagent command`
  if (options.argv?.includes('--json')) {
    // No command ran, so no base command writes the error: the --json contract still holds.
    process.stdout.write(`${JSON.stringify({error: {code: 'UNKNOWN_COMMAND', message, suggestions}}, null, 2)}\n`)
    process.exitCode = 2
    return
  }
  throw new Errors.CLIError(message, {exit: 2, code: 'UNKNOWN_COMMAND', suggestions})
}

export default hook
