import {existsSync, statSync} from 'node:fs'

import {UserError} from '../errors.js'
import {listLogFiles, verifyLogFile, type VerifyResult} from './audit-log.js'

export interface VerifyLogsResult {
  ok: boolean
  files: VerifyResult[]
}

/** Verifies the given log files, or every log in the folder when none are given. */
export function verifyLogs(files: string[] | undefined, directory: string): VerifyLogsResult {
  // A folder given as the argument is a logs folder: every log in it is verified.
  const folder = files?.length === 1 && existsSync(files[0]) && statSync(files[0]).isDirectory() ? files[0] : undefined
  const targets = folder !== undefined ? listLogFiles(folder) : (files ?? listLogFiles(directory))
  if (targets.length === 0)
    throw new UserError(`no audit logs (*.jsonl) in ${folder ?? directory}`, {
      suggestions: ['Run `invagent audit` first, or pass a log file.'],
    })
  const results = targets.map((file) => verifyLogFile(file))
  return {ok: results.every((result) => result.ok), files: results}
}
