import {createReadStream, createWriteStream, existsSync, renameSync, rmSync} from 'node:fs'
import {once} from 'node:events'
import {resolve} from 'node:path'
import {createInterface} from 'node:readline'

import {UserError} from '../errors.js'
import {checkExample} from './check.js'
import {toPlaybook} from './convert.js'
import {findSyntaxProblem} from './json-text.js'
import {detectFormat, type DatasetFormat} from './schema.js'

export interface ConvertFileOptions {
  input: string
  out: string
  from: Exclude<DatasetFormat, 'playbook'>
}

export interface ConvertFileResult {
  input: string
  out: string
  lines: number
  converted: number
  failed: Array<{line: number; reason: string}>
}

/**
 * Converts a file in a foreign format to the playbook, line by line; lines that cannot be
 * converted are reported with the reason and left out. Written atomically.
 */
export async function convertFile(options: ConvertFileOptions): Promise<ConvertFileResult> {
  const input = resolve(options.input)
  const out = resolve(options.out)
  if (!existsSync(input)) throw new UserError(`${options.input} does not exist`)
  if (input === out) throw new UserError('--out must differ from the input file')
  const result: ConvertFileResult = {input, out, lines: 0, converted: 0, failed: []}
  const temporary = `${out}.tmp-${process.pid}`
  const writer = createWriteStream(temporary, {encoding: 'utf8'})
  try {
    for await (const line of createInterface({
      input: createReadStream(input, {encoding: 'utf8'}),
      crlfDelay: Infinity,
    })) {
      const number = ++result.lines
      if (line.trim() === '') {
        result.failed.push({line: number, reason: 'blank line'})
        continue
      }
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch {
        result.failed.push({
          line: number,
          reason: `not valid JSON: ${findSyntaxProblem(line)?.message ?? 'parse error'}`,
        })
        continue
      }
      const detected = detectFormat(value)
      if (detected !== undefined && detected !== options.from) {
        result.failed.push({line: number, reason: `looks like the ${detected} format, not ${options.from}`})
        continue
      }
      const {problems} = checkExample(value, options.from)
      const blocking = problems.filter(
        (problem) => problem.code !== 'unterminated' && problem.code !== 'missing-observation',
      )
      if (blocking.length > 0) {
        result.failed.push({line: number, reason: blocking[0].message})
        continue
      }
      const conversion = toPlaybook(value, options.from)
      if (!conversion.ok) {
        result.failed.push({line: number, reason: conversion.reason})
        continue
      }
      if (!writer.write(JSON.stringify(conversion.example) + '\n')) await once(writer, 'drain')
      result.converted++
    }
    writer.end()
    await once(writer, 'finish')
    renameSync(temporary, out)
    return result
  } catch (error) {
    writer.destroy()
    rmSync(temporary, {force: true})
    throw error
  }
}
