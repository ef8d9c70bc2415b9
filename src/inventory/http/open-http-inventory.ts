import {HttpInventory, type HttpInventoryOptions} from './http-backend.js'
import {defaultMirrorPath} from './mirror.js'
import {resolveToken} from './token.js'

export interface OpenHttpInventoryOptions extends Partial<Omit<HttpInventoryOptions, 'baseUrl' | 'token'>> {
  /** The inventory's base URL, `http://…` or `https://…`. */
  url: string
  /** File holding the bearer token; else INVAGENT_TOKEN; else none. */
  tokenFile?: string
  env?: NodeJS.ProcessEnv
}

/**
 * Opens an inventory behind the REST contract the way the CLI does: the token from --token-file
 * or INVAGENT_TOKEN, the mirror under .invagent/mirrors unless told otherwise. One request is
 * made (it checks the URL and the token); nothing is mirrored until detection runs.
 */
export async function openHttpInventory(options: OpenHttpInventoryOptions): Promise<HttpInventory> {
  const {url, tokenFile, env, ...rest} = options
  return HttpInventory.open({
    ...rest,
    baseUrl: url,
    token: resolveToken(tokenFile, env),
    mirrorPath: rest.mirrorPath ?? defaultMirrorPath(url),
  })
}
