import {mkdirSync, renameSync, writeFileSync} from 'node:fs'
import {dirname, resolve} from 'node:path'

/**
 * Writes a report file whole or not at all: into a temporary file beside it, then renamed over it,
 * so a reader (CI collecting JUnit) never sees half a file. Returns the absolute path.
 */
export function writeAtomically(path: string, text: string): string {
  const target = resolve(path)
  mkdirSync(dirname(target), {recursive: true})
  const temporary = `${target}.tmp-${process.pid}`
  writeFileSync(temporary, text)
  renameSync(temporary, target)
  return target
}
