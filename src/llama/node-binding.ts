import {
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import {join} from 'node:path'

import {ExternalToolError} from '../errors.js'
import {runProcess} from '../process/run-process.js'
import {acquireBuildLock} from './build-lock.js'
import {llamaCacheRoot, llamaSourceInfo, nodeLlamaCppPackageDir} from './cache.js'

/*
 * node-llama-cpp's native binding, compiled from the same llama.cpp source as llama-server.
 *
 * The prebuilt CPU binaries node-llama-cpp installs from npm are built without OpenMP: every
 * decode starts its threads anew, which on a small model made generating one token at a time on
 * two threads two to three times slower than llama-server (see README, Benchmarks). Built here
 * with OpenMP (and for this CPU), the embedded engine decodes as fast as llama-server.
 *
 * node-llama-cpp compiles it (its `source download` command: the bundled git release, cmake-js)
 * into node_modules, which `npm ci` wipes; so the result is kept in the invagent cache, keyed like
 * the llama.cpp build, and copied back into node_modules whenever it is missing there. node-llama-cpp
 * then prefers it to the prebuilt binaries on its own (getLlama with build: "never").
 */

export interface NodeBindingResult {
  /** node-llama-cpp's name for the build (its localBuilds folder), e.g. "linux-x64". */
  folder: string
  /** The cached copy. */
  cached: string
  /** Where node-llama-cpp loads it from. */
  installed: string
  /** True when it was compiled by this call (about 4 minutes on 2 cores). */
  built: boolean
  /** True when it was copied into node_modules by this call. */
  restored: boolean
}

interface BindingInfo {
  folder: string
  tag: string
  nodeLlamaCppVersion: string
  builtAt: string
  buildSeconds: number
}

function localBuildsDir(): string {
  return join(nodeLlamaCppPackageDir(), 'llama', 'localBuilds')
}

/** A local build node-llama-cpp accepts: the addon, its metadata, and the "done" marker. */
function isCompleteBuild(folder: string): boolean {
  return ['Release/llama-addon.node', 'Release/_nlcBuildMetadata.json', 'buildDone.status'].every((file) =>
    existsSync(join(folder, file)),
  )
}

function sameBuild(a: string, b: string): boolean {
  const metadata = (folder: string) => readFileSync(join(folder, 'Release', '_nlcBuildMetadata.json'), 'utf8')
  const addonSize = (folder: string) => statSync(join(folder, 'Release', 'llama-addon.node')).size
  return metadata(a) === metadata(b) && addonSize(a) === addonSize(b)
}

/** Copies a complete build into place through a temporary folder, so it is never seen half-copied. */
function copyBuild(from: string, to: string): void {
  const temporary = `${to}.tmp-${process.pid}`
  rmSync(temporary, {recursive: true, force: true})
  mkdirSync(temporary, {recursive: true})
  cpSync(join(from, 'Release'), join(temporary, 'Release'), {recursive: true})
  writeFileSync(join(temporary, 'buildDone.status'), '')
  rmSync(to, {recursive: true, force: true})
  renameSync(temporary, to)
}

/**
 * Makes sure node-llama-cpp has the locally compiled binding: from the cache when it is there,
 * compiled (and cached) otherwise. `onLine` receives the compiler's output, for progress.
 */
export async function ensureNodeBinding(
  options: {signal?: AbortSignal; force?: boolean; onLine?: (line: string) => void} = {},
): Promise<NodeBindingResult> {
  const info = await llamaSourceInfo()
  const cacheRoot = join(llamaCacheRoot(), `${info.key}-node-binding`)
  const infoFile = join(cacheRoot, 'binding-info.json')
  const cachedInfo = existsSync(infoFile) ? (JSON.parse(readFileSync(infoFile, 'utf8')) as BindingInfo) : undefined
  if (!options.force && cachedInfo && isCompleteBuild(join(cacheRoot, cachedInfo.folder)))
    return install(cachedInfo.folder, cacheRoot, false)

  mkdirSync(llamaCacheRoot(), {recursive: true})
  const lock = await acquireBuildLock(join(llamaCacheRoot(), `${info.key}-node-binding.lock`), {signal: options.signal})
  try {
    const again = existsSync(infoFile) ? (JSON.parse(readFileSync(infoFile, 'utf8')) as BindingInfo) : undefined
    if (!options.force && again && isCompleteBuild(join(cacheRoot, again.folder)))
      return install(again.folder, cacheRoot, false)
    const started = performance.now()
    const packageDir = nodeLlamaCppPackageDir()
    const logFile = join(llamaCacheRoot(), `${info.key}-node-binding.log`)
    const log = createWriteStream(logFile)
    try {
      // The bundled git release is used for this tag: nothing is downloaded. CPU only.
      await runProcess(
        process.execPath,
        [
          join(packageDir, 'dist', 'cli', 'cli.js'),
          'source',
          'download',
          '--release',
          info.tag,
          '--gpu',
          'false',
          '--noUsageExample',
        ],
        {
          signal: options.signal,
          processGroup: true,
          onLine: (line) => {
            log.write(`${line}\n`)
            options.onLine?.(line)
          },
          suggestions: [
            `The full log: ${logFile}`,
            'node-llama-cpp compiles with cmake and a C++ compiler (apt-get install cmake g++).',
          ],
        },
      )
    } finally {
      await new Promise<void>((resolve) => log.end(resolve))
    }
    const lastBuild = join(packageDir, 'llama', 'lastBuild.json')
    const folder = existsSync(lastBuild)
      ? (JSON.parse(readFileSync(lastBuild, 'utf8')) as {folderName?: string}).folderName
      : undefined
    if (!folder || !isCompleteBuild(join(localBuildsDir(), folder))) {
      throw new ExternalToolError('node-llama-cpp reported success but its local build is incomplete', {
        command: 'node-llama-cpp source download',
        suggestions: [`The full log: ${logFile}`],
      })
    }
    // The clone of the source under node_modules is only needed to compile.
    rmSync(join(packageDir, 'llama', 'llama.cpp'), {recursive: true, force: true})
    mkdirSync(cacheRoot, {recursive: true})
    copyBuild(join(localBuildsDir(), folder), join(cacheRoot, folder))
    const bindingInfo: BindingInfo = {
      folder,
      tag: info.tag,
      nodeLlamaCppVersion: info.nodeLlamaCppVersion,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((performance.now() - started) / 1000),
    }
    writeFileSync(infoFile, `${JSON.stringify(bindingInfo, null, 2)}\n`)
    return {
      folder,
      cached: join(cacheRoot, folder),
      installed: join(localBuildsDir(), folder),
      built: true,
      restored: false,
    }
  } finally {
    lock.release()
  }
}

function install(folder: string, cacheRoot: string, built: boolean): NodeBindingResult {
  const cached = join(cacheRoot, folder)
  const installed = join(localBuildsDir(), folder)
  const present = isCompleteBuild(installed) && sameBuild(installed, cached)
  if (!present) {
    mkdirSync(localBuildsDir(), {recursive: true})
    copyBuild(cached, installed)
  }
  return {folder, cached, installed, built, restored: !present}
}
