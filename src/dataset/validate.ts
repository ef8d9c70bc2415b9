/*
 * Minimal stand-in for the dataset validator, with the agreed interface. Replaced by the real
 * module when the dataset work lands; only what train needs is checked here.
 */
import {readFile} from 'node:fs/promises'

export interface DatasetProblem {
  file: string
  line: number
  column: number
  message: string
}

export interface DatasetValidationReport {
  ok: boolean
  problems: DatasetProblem[]
  examples: number
}

export async function validateDatasetFiles(files: string[], _options: {format?: 'auto' | 'playbook' | 'trajectory' | 'instruction'} = {}): Promise<DatasetValidationReport> {
  const problems: DatasetProblem[] = []
  let examples = 0
  for (const file of files) {
    const lines = (await readFile(file, 'utf8')).split('\n')
    lines.forEach((text, index) => {
      if (text.trim() === '') return
      try {
        const value = JSON.parse(text) as {messages?: unknown}
        if (!Array.isArray(value.messages)) problems.push({file, line: index + 1, column: 1, message: 'expected "messages": an array'})
        else examples++
      } catch (error) {
        problems.push({file, line: index + 1, column: 1, message: `invalid JSON: ${(error as Error).message}`})
      }
    })
  }
  return {ok: problems.length === 0, problems, examples}
}
