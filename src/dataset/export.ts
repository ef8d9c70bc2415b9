/*
 * Minimal stand-in for the dataset exporter, with the agreed interface. Replaced by the real
 * module when the dataset work lands.
 */
import {createHash} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'

export async function exportDataset(options: {input: string; out: string; format?: 'chat'}): Promise<{examples: number; out: string; sha256: string}> {
  const lines = (await readFile(options.input, 'utf8')).split('\n').filter((line) => line.trim() !== '')
  const out = lines
    .map((line, index) => {
      const value = JSON.parse(line) as {id?: string; messages: unknown}
      return JSON.stringify({id: value.id ?? `example-${index + 1}`, messages: value.messages})
    })
    .join('\n')
  const text = out === '' ? '' : `${out}\n`
  await writeFile(options.out, text)
  return {examples: lines.length, out: options.out, sha256: createHash('sha256').update(text).digest('hex')}
}
