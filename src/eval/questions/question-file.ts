import {createHash} from 'node:crypto'
import {existsSync, readFileSync, statSync} from 'node:fs'
import {basename, resolve} from 'node:path'

import {checkExample} from '../../dataset/check.js'
import {findSyntaxProblem, locatePointer} from '../../dataset/json-text.js'
import {detectFormat} from '../../dataset/schema.js'
import {UserError} from '../../errors.js'

/*
 * A question file, `{"query", "context"?, "expected"}` per line, read for `invagent eval
 * --questions`. Question files are small (hundreds to thousands of lines), so the file is read
 * whole. Every line must be a valid question: a release gate that skipped broken lines would
 * score a different file than the one named. Blank lines are skipped; a line asked twice is asked
 * twice, as written, and counted in `duplicates` (`dataset validate` reports them as problems).
 */

export interface Question {
  /** 1-based line in the file. */
  line: number
  query: string
  context?: string
  expected: string
}

export interface QuestionFile {
  path: string
  /** sha256 of the file's bytes, first 16 hex digits: which file a result scored. */
  hash: string
  questions: Question[]
  /** Lines whose query and context an earlier line already has, with that earlier line. */
  duplicates: Array<{line: number; firstLine: number}>
}

const MAX_PROBLEMS_SHOWN = 10
const QUESTION_SHAPE = '{query, context?, expected}'
const FORMAT_HINT =
  'A question file is JSONL: {"query": "…", "context": "…", "expected": "…"} per line (context optional).'

/** One line as a question, or its problems as `col: message`. */
function readQuestion(text: string): {question: Omit<Question, 'line'>} | {problems: string[]} {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    const syntax = findSyntaxProblem(text) ?? {offset: 0, message: 'not valid JSON'}
    return {problems: [`${syntax.offset + 1}: ${syntax.message}`]}
  }
  const format = detectFormat(value)
  if (format !== 'question')
    return {
      problems: [
        `1: ${format ? `a ${format} example` : 'not an example in any known format'}, not a question ${QUESTION_SHAPE}`,
      ],
    }
  const checked = checkExample(value, 'question').problems
  if (checked.length > 0)
    return {
      problems: checked.map(
        (problem) => `${locatePointer(text, problem.pointer, problem.key) + 1}: ${problem.message}`,
      ),
    }
  const {query, context, expected} = value as Omit<Question, 'line'>
  return {question: {query, ...(context === undefined ? {} : {context}), expected}}
}

/** Reads and checks a question file; throws a UserError listing `file:line:col: message` for every broken line. */
export function loadQuestionFile(path: string): QuestionFile {
  const file = resolve(path)
  if (!existsSync(file))
    throw new UserError(`question file ${path} does not exist`, {
      code: 'QUESTIONS_NOT_FOUND',
      suggestions: [FORMAT_HINT],
    })
  if (statSync(file).isDirectory())
    throw new UserError(`question file ${path} is a directory, expected a JSONL file`, {code: 'QUESTIONS_NOT_FOUND'})
  const bytes = readFileSync(file)
  const lines = bytes
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
  const name = basename(file)
  const problems: string[] = []
  let brokenLines = 0
  const questions: Question[] = []
  const duplicates: QuestionFile['duplicates'] = []
  const seen = new Map<string, number>()
  lines.forEach((text, index) => {
    const line = index + 1
    if (text.trim() === '') return
    const read = readQuestion(text)
    if ('problems' in read) {
      brokenLines++
      problems.push(...read.problems.map((problem) => `${name}:${line}:${problem}`))
      return
    }
    const key = JSON.stringify([read.question.query, read.question.context ?? null])
    const first = seen.get(key)
    if (first === undefined) seen.set(key, line)
    else duplicates.push({line, firstLine: first})
    questions.push({line, ...read.question})
  })
  if (problems.length > 0) {
    const shown = problems.slice(0, MAX_PROBLEMS_SHOWN).join('\n')
    const more = problems.length > MAX_PROBLEMS_SHOWN ? `\n… and ${problems.length - MAX_PROBLEMS_SHOWN} more` : ''
    throw new UserError(
      `${path}: ${brokenLines} line${brokenLines === 1 ? ' is' : 's are'} not valid questions:\n${shown}${more}`,
      {
        code: 'QUESTIONS_INVALID',
        suggestions: [`\`invagent dataset validate ${path}\` lists every problem; --fix writes a clean copy.`],
      },
    )
  }
  if (questions.length === 0)
    throw new UserError(`${path} holds no question`, {code: 'QUESTIONS_INVALID', suggestions: [FORMAT_HINT]})
  return {path: file, hash: createHash('sha256').update(bytes).digest('hex').slice(0, 16), questions, duplicates}
}
