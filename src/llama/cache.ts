import {createHash} from 'node:crypto'
import {createReadStream, existsSync, readFileSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {ConfigError} from '../errors.js'

/*
 * Where llama.cpp builds live: a cache outside the repository, one folder per llama.cpp source
 * (the git bundle node-llama-cpp ships), so that upgrading node-llama-cpp builds anew and an
 * unchanged one finds its binaries at once.
 *
 *   <cache>/llama.cpp/<key>/bin/llama-server, llama-quantize
 *   <cache>/llama.cpp/<key>/source/            the llama.cpp source (convert_hf_to_gguf.py, gguf-py, …)
 *   <cache>/llama.cpp/<key>/build-info.json    what was built, how, and how long it took
 *   <cache>/llama.cpp/<key>/build.log          cmake's full output
 */

export const LLAMA_BINARY_NAMES = ['llama-server', 'llama-quantize'] as const
export type LlamaBinaryName = (typeof LLAMA_BINARY_NAMES)[number]

/** `$INVAGENT_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/invagent`. */
export function invagentCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.INVAGENT_CACHE) return env.INVAGENT_CACHE
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'invagent')
}

/** The folder holding every llama.cpp build, one subfolder per key. */
export function llamaCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return join(invagentCacheDir(env), 'llama.cpp')
}

/** Which llama.cpp source node-llama-cpp ships, and the cache key derived from it. */
export interface LlamaSourceInfo {
  nodeLlamaCppVersion: string
  /** The llama.cpp release tag node-llama-cpp pins (llama/llama.cpp.info.json). */
  tag: string
  bundlePath: string
  bundleSha256: string
  /** `<tag>-nlc<node-llama-cpp version>-<12 hex of the bundle's sha256>`: safe as a folder name. */
  key: string
}

/** The folder of the installed node-llama-cpp package (its exports hide package.json). */
export function nodeLlamaCppPackageDir(): string {
  let directory = dirname(fileURLToPath(import.meta.resolve('node-llama-cpp')))
  for (;;) {
    const manifest = join(directory, 'package.json')
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as {name?: string}).name === 'node-llama-cpp'
    )
      return directory
    const parent = dirname(directory)
    if (parent === directory)
      throw new ConfigError('node-llama-cpp is installed but its package.json was not found', {
        suggestions: ['Run `npm ci` to reinstall the dependencies.'],
      })
    directory = parent
  }
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

let memo: {stamp: string; info: LlamaSourceInfo} | undefined

/** Reads node-llama-cpp's version, pinned tag and bundle hash (hashing 35 MB once per process and bundle). */
export async function llamaSourceInfo(): Promise<LlamaSourceInfo> {
  const packageDir = nodeLlamaCppPackageDir()
  const bundlePath = join(packageDir, 'llama', 'gitRelease.bundle')
  const infoPath = join(packageDir, 'llama', 'llama.cpp.info.json')
  if (!existsSync(bundlePath) || !existsSync(infoPath)) {
    throw new ConfigError(
      `node-llama-cpp does not ship the llama.cpp source here: expected ${bundlePath} and ${infoPath}`,
      {
        suggestions: [
          'Run `npm ci` to reinstall node-llama-cpp.',
          'Or point --llama-server / INVAGENT_LLAMA_SERVER at a llama-server you built yourself.',
        ],
      },
    )
  }
  const stat = statSync(bundlePath)
  const stamp = `${bundlePath}:${stat.size}:${stat.mtimeMs}`
  if (memo?.stamp === stamp) return memo.info
  const nodeLlamaCppVersion = (JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {version: string})
    .version
  const tag = (JSON.parse(readFileSync(infoPath, 'utf8')) as {tag?: string}).tag ?? 'untagged'
  const bundleSha256 = await sha256OfFile(bundlePath)
  const key = `${tag}-nlc${nodeLlamaCppVersion}-${bundleSha256.slice(0, 12)}`.replace(/[^\w.-]/g, '_')
  const info = {nodeLlamaCppVersion, tag, bundlePath, bundleSha256, key}
  memo = {stamp, info}
  return info
}

/** The paths of one cached build. */
export interface LlamaBuildPaths {
  root: string
  binDir: string
  sourceDir: string
  infoFile: string
  logFile: string
  binaries: Record<LlamaBinaryName, string>
}

export function llamaBuildPaths(key: string, env: NodeJS.ProcessEnv = process.env): LlamaBuildPaths {
  const root = join(llamaCacheRoot(env), key)
  const binDir = join(root, 'bin')
  return {
    root,
    binDir,
    sourceDir: join(root, 'source'),
    infoFile: join(root, 'build-info.json'),
    logFile: join(root, 'build.log'),
    binaries: {'llama-server': join(binDir, 'llama-server'), 'llama-quantize': join(binDir, 'llama-quantize')},
  }
}

/**
 * The llama.cpp source the binaries were built from (convert_hf_to_gguf.py, gguf-py, …), so
 * that a GGUF converted later matches the llama-server that serves it.
 */
export async function llamaSourceDir(): Promise<string> {
  const {key} = await llamaSourceInfo()
  const {sourceDir} = llamaBuildPaths(key)
  if (!existsSync(join(sourceDir, 'convert_hf_to_gguf.py'))) {
    throw new ConfigError(`the llama.cpp source for ${key} is not in the cache (${sourceDir})`, {
      suggestions: ['Run `invagent llama build` once; it keeps the source next to the binaries.'],
    })
  }
  return sourceDir
}
