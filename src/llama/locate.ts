import {accessSync, constants, statSync} from 'node:fs'
import {delimiter, isAbsolute, join, resolve} from 'node:path'

import {ConfigError, UserError} from '../errors.js'
import {llamaBuildPaths, llamaCacheRoot, llamaSourceInfo, type LlamaBinaryName} from './cache.js'

/** The environment variable that names each binary. */
export const LLAMA_BINARY_ENV: Record<LlamaBinaryName, string> = {
  'llama-server': 'INVAGENT_LLAMA_SERVER',
  'llama-quantize': 'INVAGENT_LLAMA_QUANTIZE',
}

export type LlamaBinarySource = 'flag' | 'env' | 'path' | 'cache'

export interface LocatedLlamaBinary {
  name: LlamaBinaryName
  path: string
  /** Where it was found: the flag, the environment variable, PATH, or invagent's build cache. */
  source: LlamaBinarySource
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The first executable `name` on PATH, like `which`. */
export function findOnPath(name: string, pathVariable = process.env.PATH ?? ''): string | undefined {
  for (const directory of pathVariable.split(delimiter)) {
    if (directory === '') continue
    const candidate = join(directory, name)
    if (isExecutableFile(candidate)) return resolve(candidate)
  }
  return undefined
}

/** A value given explicitly (flag or env): a path, or a bare command name looked up on PATH. */
function resolveExplicit(value: string, pathVariable: string | undefined): string | undefined {
  if (!isAbsolute(value) && !value.includes('/')) return findOnPath(value, pathVariable)
  const path = resolve(value)
  return isExecutableFile(path) ? path : undefined
}

export interface FindLlamaBinaryOptions {
  env?: NodeJS.ProcessEnv
  /** The name of the flag that carried `flagValue`, for messages (default `--<name>`). */
  flagName?: string
}

/**
 * Finds llama-server or llama-quantize, in this order: the flag's value, INVAGENT_LLAMA_SERVER /
 * INVAGENT_LLAMA_QUANTIZE, PATH, then invagent's build cache (`invagent llama build`). A flag or
 * variable that names something unusable is an error rather than a reason to look further:
 * the user asked for that binary.
 */
export async function findLlamaBinary(
  name: LlamaBinaryName,
  flagValue?: string,
  options: FindLlamaBinaryOptions = {},
): Promise<LocatedLlamaBinary> {
  const env = options.env ?? process.env
  const flagName = options.flagName ?? `--${name}`
  if (flagValue !== undefined && flagValue !== '') {
    const path = resolveExplicit(flagValue, env.PATH)
    if (!path)
      throw new UserError(`${flagName} ${flagValue}: no executable file there`, {
        suggestions: [`Give the path of a built ${name}, or leave ${flagName} out to use \`invagent llama build\`'s.`],
      })
    return {name, path, source: 'flag'}
  }
  const variable = LLAMA_BINARY_ENV[name]
  const fromEnv = env[variable]
  if (fromEnv) {
    const path = resolveExplicit(fromEnv, env.PATH)
    if (!path)
      throw new ConfigError(`${variable}=${fromEnv}: no executable file there`, {
        suggestions: [`Fix or unset ${variable}.`],
      })
    return {name, path, source: 'env'}
  }
  const onPath = findOnPath(name, env.PATH)
  if (onPath) return {name, path: onPath, source: 'path'}
  const cached = await findCachedLlamaBinary(name, env)
  if (cached) return {name, path: cached, source: 'cache'}
  throw new ConfigError(
    `${name} not found: not given with ${flagName}, not in ${variable}, not on PATH, and not built in ${llamaCacheRoot(env)}`,
    {
      code: 'LLAMA_BINARY_NOT_FOUND',
      suggestions: [
        `Run \`invagent llama build\` to compile ${name} from the llama.cpp source node-llama-cpp ships (about 8 minutes on 2 cores, once).`,
        `Or point ${flagName} or ${variable} at an existing ${name}.`,
      ],
    },
  )
}

/** The binary in the build cache for the installed node-llama-cpp's llama.cpp, if built. */
export async function findCachedLlamaBinary(
  name: LlamaBinaryName,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  let key: string
  try {
    key = (await llamaSourceInfo()).key
  } catch {
    return undefined
  }
  const path = llamaBuildPaths(key, env).binaries[name]
  return isExecutableFile(path) ? path : undefined
}
