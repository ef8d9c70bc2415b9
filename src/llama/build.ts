import {
  chmodSync,
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs'
import {availableParallelism, cpus} from 'node:os'
import {join} from 'node:path'

import {Listr} from 'listr2'

import {ConfigError, ExternalToolError} from '../errors.js'
import {runProcess} from '../process/run-process.js'
import {probeLlamaBinary} from './probe-binary.js'
import {acquireBuildLock} from './build-lock.js'
import {ensureNodeBinding, type NodeBindingResult} from './node-binding.js'
import {listrOptions} from './progress.js'
import {
  LLAMA_BINARY_NAMES,
  llamaBuildPaths,
  llamaCacheRoot,
  llamaSourceInfo,
  type LlamaBuildPaths,
  type LlamaSourceInfo,
} from './cache.js'

/*
 * `invagent llama build`: compiles llama-server and llama-quantize from the llama.cpp source that
 * node-llama-cpp ships (a git bundle), into a cache keyed by that source.
 *
 * Under a lock, the work happens in a staging folder next to the final one
 * (`<cache>/llama.cpp/.staging-<key>`): unpacked source, cmake build tree, log. The finished
 * result is assembled in a temporary folder and renamed into place in one step, so
 * `<cache>/llama.cpp/<key>` is either complete or absent. A failed or interrupted build keeps its
 * staging folder, so that running the command again resumes the compile where it stopped (cmake
 * is incremental) instead of starting the 8 minutes over; `--force` starts from scratch.
 */

/**
 * CMake options, each for a reason:
 * - static libraries, so the binaries do not point at the build tree (RPATH), which is deleted;
 * - no tests, examples, web UI, or anything that downloads at configure or build time (the web UI
 *   would otherwise be fetched from Hugging Face), and no OpenSSL (HTTPS is only for downloading
 *   models, which invagent never asks llama-server to do);
 * - GGML_NATIVE: optimised for this machine's CPU. The cache is local, so that is right here, but a
 *   cache copied to a machine with another CPU may crash with an illegal instruction: rebuild there.
 */
export const CMAKE_CONFIGURE_FLAGS = [
  '-DCMAKE_BUILD_TYPE=Release',
  '-DBUILD_SHARED_LIBS=OFF',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
  '-DLLAMA_BUILD_UI=OFF',
  '-DLLAMA_USE_PREBUILT_UI=OFF',
  '-DLLAMA_OPENSSL=OFF',
  '-DGGML_NATIVE=ON',
  '-DGGML_CCACHE=OFF',
] as const

export type ProgressRenderer = 'default' | 'simple' | 'silent'

export interface BuildLlamaOptions {
  /** Rebuild from scratch even when the cache already holds working binaries. */
  force?: boolean
  /** Parallel compile jobs (default: available cores). */
  jobs?: number
  signal?: AbortSignal
  /** listr2's interactive renderer, the plain line-by-line one (not a TTY, CI, --json), or nothing. All go to stderr. */
  renderer?: ProgressRenderer
  /** Also compile node-llama-cpp's binding from the same source (default true); see node-binding.ts. */
  binding?: boolean
}

export interface LlamaBuildResult {
  /** The llama.cpp release tag node-llama-cpp pins. */
  version: string
  /** What `llama-server --version` says. */
  llamaServerVersion: string
  key: string
  cacheDir: string
  sourceDir: string
  binaries: {llamaServer: string; llamaQuantize: string}
  /** False when the cache already had working binaries. */
  built: boolean
  seconds: number
  /** node-llama-cpp's binding compiled from the same source, when asked for. */
  nodeBinding?: NodeBindingResult
}

/** Written next to the binaries: what was built, from what, how. */
export interface LlamaBuildInfo {
  key: string
  tag: string
  nodeLlamaCppVersion: string
  bundleSha256: string
  llamaServerVersion: string
  cmakeFlags: string[]
  cpu: string
  jobs: number
  builtAt: string
  buildSeconds: number
}

function binariesOf(paths: LlamaBuildPaths): LlamaBuildResult['binaries'] {
  return {llamaServer: paths.binaries['llama-server'], llamaQuantize: paths.binaries['llama-quantize']}
}

/** Where an unfinished build of `key` keeps its source, build tree and log. */
export function llamaStagingDir(key: string): string {
  return join(llamaCacheRoot(), `.staging-${key}`)
}

/** The cached build for the installed node-llama-cpp, if its binaries are there and run. */
export async function cachedLlamaBuild(
  options: {signal?: AbortSignal} = {},
): Promise<Omit<LlamaBuildResult, 'built' | 'seconds'> | undefined> {
  const info = await llamaSourceInfo()
  const paths = llamaBuildPaths(info.key)
  if (!LLAMA_BINARY_NAMES.every((name) => existsSync(paths.binaries[name]))) return undefined
  try {
    const llamaServerVersion =
      (await probeLlamaBinary('llama-server', paths.binaries['llama-server'], options)) ?? 'unknown'
    await probeLlamaBinary('llama-quantize', paths.binaries['llama-quantize'], options)
    return {
      version: info.tag,
      llamaServerVersion,
      key: info.key,
      cacheDir: paths.root,
      sourceDir: paths.sourceDir,
      binaries: binariesOf(paths),
    }
  } catch (error) {
    if (options.signal?.aborted) throw error
    return undefined
  }
}

async function requireBuildTools(signal?: AbortSignal): Promise<void> {
  const missing: string[] = []
  for (const tool of ['git', 'cmake', 'c++'] as const) {
    try {
      await runProcess(tool, ['--version'], {timeoutMs: 20_000, signal})
    } catch (error) {
      if (signal?.aborted) throw error
      missing.push(tool)
    }
  }
  if (missing.length > 0) {
    throw new ConfigError(
      `building llama.cpp needs ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not installed`,
      {
        suggestions: [
          'On Debian or Ubuntu: `sudo apt-get install git cmake g++`.',
          'Or point --llama-server / INVAGENT_LLAMA_SERVER at a llama-server built elsewhere.',
        ],
      },
    )
  }
}

/** Follows `cmake --build` output: "[ 42%] Building CXX object …" → 42 and the object's short name. */
export function parseCmakeProgress(line: string): {percent: number; what: string} | undefined {
  const match = /^\[\s*(\d{1,3})%\]\s+(.*)$/.exec(line)
  if (!match) return undefined
  const what = match[2]
    .replace(/^Building (?:C|CXX) object .*\/([^/]+?)\.o$/, 'compiling $1')
    .replace(/^Linking CXX executable .*\/([^/]+)$/, 'linking $1')
  return {percent: Number(match[1]), what}
}

/**
 * Builds (or finds in the cache) llama-server and llama-quantize for the llama.cpp source the
 * installed node-llama-cpp ships. Safe to run concurrently: a second build of the same key waits
 * for the first and then finds its result.
 */
export async function buildLlama(options: BuildLlamaOptions = {}): Promise<LlamaBuildResult> {
  const started = performance.now()
  const result = await buildLlamaTools(options)
  if (options.binding === false) return result
  const nodeBinding = await buildNodeBinding(options)
  return {...result, nodeBinding, seconds: Math.round((performance.now() - started) / 100) / 10}
}

/** Follows node-llama-cpp's compile output: "[42/153] Building CXX object …" → 27 (percent). */
export function parseNinjaProgress(line: string): number | undefined {
  const match = /^\[(\d+)\/(\d+)\]/.exec(line.trim())
  return match ? Math.floor((100 * Number(match[1])) / Number(match[2])) : undefined
}

async function buildNodeBinding(options: BuildLlamaOptions): Promise<NodeBindingResult> {
  let result: NodeBindingResult | undefined
  const renderer = options.renderer ?? 'simple'
  const tasks = new Listr(
    [
      {
        title: 'node-llama-cpp binding from the same source (OpenMP, this CPU)',
        task: async (_context, task) => {
          let shown = -10
          result = await ensureNodeBinding({
            signal: options.signal,
            force: options.force,
            onLine: (line) => {
              const percent = parseNinjaProgress(line)
              if (percent !== undefined && (renderer === 'default' || percent >= shown + 10)) {
                shown = percent - (percent % 10)
                task.output = `${percent}% compiled`
              }
            },
          })
          task.title = result.built
            ? `node-llama-cpp binding compiled into ${result.cached}`
            : result.restored
              ? `node-llama-cpp binding restored from ${result.cached}`
              : 'node-llama-cpp binding already in place'
        },
      },
    ],
    listrOptions(renderer),
  )
  await tasks.run()
  return result!
}

async function buildLlamaTools(options: BuildLlamaOptions): Promise<LlamaBuildResult> {
  const started = performance.now()
  const seconds = () => Math.round((performance.now() - started) / 100) / 10
  const {signal} = options
  const info = await llamaSourceInfo()
  const paths = llamaBuildPaths(info.key)

  if (!options.force) {
    const cached = await cachedLlamaBuild({signal})
    if (cached) return {...cached, built: false, seconds: seconds()}
  }

  await requireBuildTools(signal)
  mkdirSync(llamaCacheRoot(), {recursive: true})
  const renderer = options.renderer ?? 'simple'
  const lock = await acquireBuildLock(join(llamaCacheRoot(), `${info.key}.lock`), {
    signal,
    onWait: (owner) => {
      if (renderer !== 'silent')
        process.stderr.write(`Waiting for another build of ${info.key} (pid ${owner.pid}, since ${owner.startedAt})…\n`)
    },
  })
  try {
    if (!options.force) {
      // Another process may have finished the same build while this one waited for the lock.
      const cached = await cachedLlamaBuild({signal})
      if (cached) return {...cached, built: false, seconds: seconds()}
    }
    const llamaServerVersion = await buildInto(
      paths,
      info,
      {...options, renderer, jobs: options.jobs ?? availableParallelism()},
      seconds,
    )
    return {
      version: info.tag,
      llamaServerVersion,
      key: info.key,
      cacheDir: paths.root,
      sourceDir: paths.sourceDir,
      binaries: binariesOf(paths),
      built: true,
      seconds: seconds(),
    }
  } finally {
    lock.release()
  }
}

async function buildInto(
  paths: LlamaBuildPaths,
  info: LlamaSourceInfo,
  options: BuildLlamaOptions & {renderer: ProgressRenderer; jobs: number},
  seconds: () => number,
): Promise<string> {
  const {signal, jobs} = options
  const staging = llamaStagingDir(info.key)
  if (options.force) rmSync(staging, {recursive: true, force: true})
  mkdirSync(staging, {recursive: true})
  const source = join(staging, 'source')
  const unpackedMarker = join(staging, 'source-unpacked')
  const buildDir = join(staging, 'cmake-build')
  const logFile = join(staging, 'build.log')
  const log: WriteStream = createWriteStream(logFile, {flags: 'a'})
  const record = (line: string) => log.write(`${line}\n`)
  record(`# invagent llama build ${info.key}, ${new Date().toISOString()}`)
  const resumeHint = [
    `The full build log: ${logFile}`,
    'Run `invagent llama build` again to resume where it stopped, or with --force to start over.',
  ]
  const resuming = existsSync(unpackedMarker) && existsSync(join(source, 'CMakeLists.txt'))
  // Without .git, cmake cannot read the commit for `--version`: it is passed explicitly.
  let commit = resuming
    ? ((JSON.parse(readFileSync(unpackedMarker, 'utf8')) as {commit?: string}).commit ?? 'unknown')
    : 'unknown'
  let llamaServerVersion = 'unknown'

  const tasks = new Listr(
    [
      {
        title: `Unpack the llama.cpp ${info.tag} source (node-llama-cpp ${info.nodeLlamaCppVersion})`,
        skip: () => (resuming ? 'already unpacked: resuming the previous build' : false),
        task: async () => {
          rmSync(source, {recursive: true, force: true})
          await runProcess('git', ['-c', 'advice.detachedHead=false', 'clone', '--quiet', info.bundlePath, source], {
            signal,
            onLine: record,
            suggestions: resumeHint,
          })
          commit = (await runProcess('git', ['-C', source, 'rev-parse', '--short', 'HEAD'], {signal})).stdout.trim()
          // The git history is a copy of the bundle: not needed to build or to convert models.
          rmSync(join(source, '.git'), {recursive: true, force: true})
          writeFileSync(unpackedMarker, `${JSON.stringify({bundleSha256: info.bundleSha256, commit})}\n`)
        },
      },
      {
        title: 'Configure (cmake)',
        task: async () => {
          const flags = [...CMAKE_CONFIGURE_FLAGS, `-DLLAMA_BUILD_COMMIT=${commit}`]
          record(`$ cmake -S ${source} -B ${buildDir} ${flags.join(' ')}`)
          await runProcess('cmake', ['-S', source, '-B', buildDir, ...flags], {
            signal,
            onLine: record,
            suggestions: resumeHint,
            processGroup: true,
          })
        },
      },
      {
        title: `Compile llama-server and llama-quantize (${jobs} job${jobs === 1 ? '' : 's'})`,
        task: async (_context, task) => {
          // The plain renderer prints every update as a line: one per 10% is enough for a log.
          const step = options.renderer === 'default' ? 1 : 10
          let shownUpTo = -step
          await runProcess(
            'cmake',
            [
              '--build',
              buildDir,
              '--config',
              'Release',
              '--target',
              'llama-server',
              'llama-quantize',
              '-j',
              String(jobs),
            ],
            {
              signal,
              suggestions: resumeHint,
              processGroup: true,
              onLine: (line) => {
                record(line)
                const progress = parseCmakeProgress(line)
                if (!progress) return
                if (options.renderer === 'default' || progress.percent >= shownUpTo + step) {
                  shownUpTo = Math.max(shownUpTo, progress.percent - (progress.percent % step))
                  task.output = `${progress.percent}% ${progress.what} (${Math.round(seconds())} s)`
                }
              },
            },
          )
        },
      },
      {
        title: `Install into ${paths.root}`,
        task: async () => {
          // Assemble the result next to its final place (same file system), then rename it there in one step.
          const work = mkdtempSync(join(llamaCacheRoot(), `.tmp-${info.key}-`))
          chmodSync(work, 0o755) // mkdtemp makes it private; the cache is as readable as any build output
          try {
            mkdirSync(join(work, 'bin'))
            for (const name of LLAMA_BINARY_NAMES) {
              const built = join(buildDir, 'bin', name)
              if (!existsSync(built))
                throw new ExternalToolError(`cmake finished but ${built} is missing`, {
                  command: 'cmake --build',
                  suggestions: resumeHint,
                })
              copyFileSync(built, join(work, 'bin', name))
              chmodSync(join(work, 'bin', name), 0o755)
            }
            llamaServerVersion =
              (await probeLlamaBinary('llama-server', join(work, 'bin', 'llama-server'), {signal})) ?? 'unknown'
            await probeLlamaBinary('llama-quantize', join(work, 'bin', 'llama-quantize'), {signal})
            const buildInfo: LlamaBuildInfo = {
              key: info.key,
              tag: info.tag,
              nodeLlamaCppVersion: info.nodeLlamaCppVersion,
              bundleSha256: info.bundleSha256,
              llamaServerVersion,
              cmakeFlags: [...CMAKE_CONFIGURE_FLAGS, `-DLLAMA_BUILD_COMMIT=${commit}`],
              cpu: cpus()[0]?.model ?? 'unknown',
              jobs,
              builtAt: new Date().toISOString(),
              buildSeconds: Math.round(seconds()),
            }
            writeFileSync(join(work, 'build-info.json'), `${JSON.stringify(buildInfo, null, 2)}\n`)
            await new Promise<void>((resolve) => log.end(resolve))
            renameSync(logFile, join(work, 'build.log'))
            renameSync(source, join(work, 'source'))
            // With --force a previous build is in the way: move it aside, put the new one in place, then delete the old.
            let previous: string | undefined
            if (existsSync(paths.root)) {
              previous = `${work}-previous`
              renameSync(paths.root, previous)
            }
            renameSync(work, paths.root)
            if (previous) rmSync(previous, {recursive: true, force: true})
          } finally {
            rmSync(work, {recursive: true, force: true})
          }
          // Object files are hundreds of megabytes and useless once linked.
          rmSync(staging, {recursive: true, force: true})
        },
      },
    ],
    listrOptions(options.renderer),
  )

  try {
    await tasks.run()
    return llamaServerVersion
  } finally {
    if (!log.closed) log.end()
  }
}
