import {chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ConfigError, UserError} from '../../src/errors.js'
import {invagentCacheDir, llamaBuildPaths, llamaSourceInfo} from '../../src/llama/cache.js'
import {findLlamaBinary} from '../../src/llama/locate.js'

let root: string

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'invagent-locate-'))
})

afterEach(() => {
  rmSync(root, {recursive: true, force: true})
})

/** An executable script at `path` (what is found only matters by its path). */
function executable(path: string, mode = 0o755): string {
  mkdirSync(join(path, '..'), {recursive: true})
  writeFileSync(path, '#!/bin/sh\necho "version: 1 (test)"\n')
  chmodSync(path, mode)
  return path
}

/** A world with llama-server in all four places; `without` leaves some out. */
async function world(without: Array<'flag' | 'env' | 'path' | 'cache'> = []) {
  const cache = join(root, 'cache')
  const {key} = await llamaSourceInfo()
  const env: NodeJS.ProcessEnv = {PATH: join(root, 'path-bin'), INVAGENT_CACHE: cache}
  const paths = {
    flag: executable(join(root, 'flag-bin', 'llama-server')),
    env: executable(join(root, 'env-bin', 'llama-server')),
    path: executable(join(root, 'path-bin', 'llama-server')),
    cache: executable(llamaBuildPaths(key, env).binaries['llama-server']),
  }
  if (!without.includes('env')) env.INVAGENT_LLAMA_SERVER = paths.env
  if (without.includes('path')) rmSync(paths.path)
  if (without.includes('cache')) rmSync(paths.cache)
  return {env, paths, flag: without.includes('flag') ? undefined : paths.flag}
}

describe('findLlamaBinary order: flag, env, PATH, cache', () => {
  it('takes the flag over everything else', async () => {
    const {env, paths, flag} = await world()
    expect(await findLlamaBinary('llama-server', flag, {env})).toEqual({
      name: 'llama-server',
      path: paths.flag,
      source: 'flag',
    })
  })

  it('takes INVAGENT_LLAMA_SERVER without a flag', async () => {
    const {env, paths} = await world(['flag'])
    expect(await findLlamaBinary('llama-server', undefined, {env})).toMatchObject({path: paths.env, source: 'env'})
  })

  it('takes PATH without a flag or variable', async () => {
    const {env, paths} = await world(['flag', 'env'])
    expect(await findLlamaBinary('llama-server', undefined, {env})).toMatchObject({path: paths.path, source: 'path'})
  })

  it('falls back to the build cache of the installed node-llama-cpp', async () => {
    const {env, paths} = await world(['flag', 'env', 'path'])
    expect(await findLlamaBinary('llama-server', undefined, {env})).toMatchObject({path: paths.cache, source: 'cache'})
    expect(paths.cache.startsWith(invagentCacheDir(env))).toBe(true)
  })

  it('says to run `invagent llama build` when it is nowhere', async () => {
    const {env} = await world(['flag', 'env', 'path', 'cache'])
    const error = (await findLlamaBinary('llama-server', undefined, {env}).catch(
      (error_: unknown) => error_,
    )) as ConfigError
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.code).toBe('LLAMA_BINARY_NOT_FOUND')
    expect(error.message).toContain('INVAGENT_LLAMA_SERVER')
    expect(error.suggestions.join('\n')).toContain('invagent llama build')
  })

  it('uses INVAGENT_LLAMA_QUANTIZE for llama-quantize, not the server variable', async () => {
    const env: NodeJS.ProcessEnv = {
      PATH: '',
      INVAGENT_CACHE: join(root, 'cache'),
      INVAGENT_LLAMA_SERVER: executable(join(root, 's', 'llama-server')),
    }
    await expect(findLlamaBinary('llama-quantize', undefined, {env})).rejects.toThrow(/llama-quantize not found/)
    env.INVAGENT_LLAMA_QUANTIZE = executable(join(root, 'q', 'llama-quantize'))
    expect(await findLlamaBinary('llama-quantize', undefined, {env})).toMatchObject({
      source: 'env',
      path: env.INVAGENT_LLAMA_QUANTIZE,
    })
  })
})

describe('findLlamaBinary with explicit values', () => {
  it('refuses a flag that names nothing executable instead of looking further', async () => {
    const {env} = await world(['flag'])
    await expect(findLlamaBinary('llama-server', join(root, 'nope', 'llama-server'), {env})).rejects.toBeInstanceOf(
      UserError,
    )
    const notExecutable = executable(join(root, 'plain', 'llama-server'), 0o644)
    await expect(findLlamaBinary('llama-server', notExecutable, {env, flagName: '--llama-server'})).rejects.toThrow(
      /--llama-server .*no executable file/,
    )
  })

  it('refuses a variable that names nothing executable', async () => {
    const {env} = await world(['flag'])
    env.INVAGENT_LLAMA_SERVER = join(root, 'missing')
    await expect(findLlamaBinary('llama-server', undefined, {env})).rejects.toBeInstanceOf(ConfigError)
  })

  it('looks a bare command name up on PATH', async () => {
    const custom = executable(join(root, 'path-bin', 'llama-server-custom'))
    expect(
      await findLlamaBinary('llama-server', 'llama-server-custom', {env: {PATH: join(root, 'path-bin')}}),
    ).toMatchObject({path: custom, source: 'flag'})
  })

  it('skips a file on PATH that is not executable', async () => {
    executable(join(root, 'first', 'llama-server'), 0o644)
    const second = executable(join(root, 'second', 'llama-server'))
    const env = {PATH: [join(root, 'first'), join(root, 'second')].join(':'), INVAGENT_CACHE: join(root, 'cache')}
    expect(await findLlamaBinary('llama-server', undefined, {env})).toMatchObject({path: second, source: 'path'})
  })
})
