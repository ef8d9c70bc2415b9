import {readFileSync} from 'node:fs'

import {UserError} from '../../errors.js'

/**
 * The bearer token, from --token-file when given, else INVAGENT_TOKEN; undefined when neither.
 * A token file holds the token alone (surrounding whitespace is ignored). Never logged.
 */
export function resolveToken(tokenFile: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (tokenFile !== undefined) {
    let text: string
    try {
      text = readFileSync(tokenFile, 'utf8')
    } catch (error) {
      throw new UserError(`cannot read the token file ${tokenFile}: ${(error as Error).message}`, {cause: error})
    }
    const token = text.trim()
    if (token === '' || /\s/.test(token)) {
      throw new UserError(
        `${tokenFile} should hold one token (no spaces); found ${token === '' ? 'an empty file' : 'several words'}`,
      )
    }
    return token
  }
  const fromEnv = env.INVAGENT_TOKEN?.trim()
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv
}
