import {UserError} from '../errors.js'
import {listLogFiles, verifyLogFile, type VerifyResult} from './audit-log.js'

export interface VerifyLogsResult {
  ok: boolean
  files: VerifyResult[]
}

/** Verifies the given log files, or every log in the folder when none are given. */
export function verifyLogs(files: string[] | undefined, directory: string): VerifyLogsResult {
  const targets = files ?? listLogFiles(directory)
  if (targets.length === 0)
    throw new UserError(`no audit logs in ${directory}`, {
      suggestions: ['Run `invagent audit` first, or pass a log file.'],
    })
  const results = targets.map((file) => verifyLogFile(file))
  return {ok: results.every((result) => result.ok), files: results}
}
