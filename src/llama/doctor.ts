import {
  accessSync,
  constants,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import {availableParallelism, cpus, tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'

import {readGgufFileInfo} from 'node-llama-cpp'

import {ExternalToolError} from '../errors.js'
import {modelsDirectory} from '../models/models-directory.js'
import {resolveModel} from '../models/registry.js'
import {runProcess} from '../process/run-process.js'
import {probeLlamaBinary} from './probe-binary.js'
import {invagentCacheDir, nodeLlamaCppPackageDir} from './cache.js'
import {findLlamaBinary, type LlamaBinarySource} from './locate.js'

/*
 * `invagent doctor`: what this machine has for running a local model, and the next step for what
 * it lacks. A check is `ok`, `warn` (works, or only an optional feature is affected) or `missing`
 * (something invagent needs to serve or quantize a model); the command exits non-zero only when
 * a check is `missing`.
 */

export const MINIMUM_NODE_MAJOR = 22

export type CheckStatus = 'ok' | 'warn' | 'missing'

export interface DoctorCheck {
  id: 'node' | 'cpu' | 'node-llama-cpp' | 'llama-server' | 'llama-quantize' | 'build-tools' | 'models' | 'cache'
  status: CheckStatus
  /** One line: what was found. */
  detail: string
  /** What to do about a `warn` or `missing`. */
  nextStep?: string
}

export interface LocatedBinaryReport {
  path: string
  source: LlamaBinarySource
  version: string | null
  error?: string
}

export interface ModelReport {
  path: string
  sizeBytes: number
  architecture: string | null
  name: string | null
  fileType: number | null
  error?: string
}

export interface DoctorReport {
  /** False when any check is `missing`. */
  ok: boolean
  checks: DoctorCheck[]
  node: {version: string}
  cpu: {threads: number; model: string}
  nodeLlamaCpp: {
    version: string | null
    bindingLoads: boolean
    buildType: string | null
    llamaCppRelease: string | null
    error?: string
  }
  binaries: {llamaServer: LocatedBinaryReport | null; llamaQuantize: LocatedBinaryReport | null}
  models: ModelReport[]
  cacheDir: string
}

export interface DoctorOptions {
  /** A model (registry name or path) to check in addition to the GGUF files of the models folder. */
  model?: string
  llamaServer?: string
  llamaQuantize?: string
  /** The model registry's folder (default: INVAGENT_MODELS_DIR or ./models). */
  modelsDir?: string
  signal?: AbortSignal
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]
}

async function locateWithVersion(
  name: 'llama-server' | 'llama-quantize',
  flagValue: string | undefined,
  signal?: AbortSignal,
): Promise<LocatedBinaryReport | {error: string}> {
  let located
  try {
    located = await findLlamaBinary(name, flagValue)
  } catch (error) {
    return {error: firstLine(error)}
  }
  try {
    return {path: located.path, source: located.source, version: await probeLlamaBinary(name, located.path, {signal})}
  } catch (error) {
    return {path: located.path, source: located.source, version: null, error: firstLine(error)}
  }
}

function binaryCheck(
  id: 'llama-server' | 'llama-quantize',
  report: LocatedBinaryReport | {error: string},
): DoctorCheck {
  const build = 'Run `invagent llama build` (about 8 minutes on 2 cores, once).'
  if (!('path' in report)) return {id, status: 'missing', detail: report.error, nextStep: build}
  if (report.error)
    return {
      id,
      status: 'missing',
      detail: `${report.path} (from ${report.source}) does not run: ${report.error}`,
      nextStep: `Rebuild with \`invagent llama build --force\`, or fix the binary ${report.source} points at.`,
    }
  return {
    id,
    status: 'ok',
    detail: `${report.path} (from ${report.source}), ${report.version === null ? 'runs (it has no --version)' : `version ${report.version}`}`,
  }
}

/** The line of a failed child's output that says what went wrong (not a stack frame). */
function summarizeFailure(error: unknown): string {
  if (error instanceof ExternalToolError && error.stderrTail) {
    const lines = error.stderrTail
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('at '))
    const telling = lines.find((line) => /error/i.test(line)) ?? lines.at(-1)
    if (telling) return `${telling} (exit code ${error.processExitCode ?? '?'})`
  }
  return firstLine(error)
}

/**
 * Loads node-llama-cpp's prebuilt CPU binding in a child process, so that a broken binding cannot
 * take doctor down with it. The probe is a file, not `node -e`: node-llama-cpp tests its binding
 * in a fork that inherits execArgv, and a forked `-e` runs the probe again instead of the test
 * (the binding then looks broken, and getLlama's default would even build llama.cpp from source).
 * `build: 'never'` keeps doctor free of side effects.
 */
async function checkBinding(signal?: AbortSignal): Promise<DoctorReport['nodeLlamaCpp']> {
  let version: string | null = null
  try {
    version = (JSON.parse(readFileSync(join(nodeLlamaCppPackageDir(), 'package.json'), 'utf8')) as {version: string})
      .version
  } catch (error) {
    return {version: null, bindingLoads: false, buildType: null, llamaCppRelease: null, error: firstLine(error)}
  }
  const probeDirectory = mkdtempSync(join(tmpdir(), 'invagent-doctor-'))
  const probe = join(probeDirectory, 'binding-probe.mjs')
  writeFileSync(
    probe,
    [
      `const {getLlama, LlamaLogLevel} = await import(${JSON.stringify(import.meta.resolve('node-llama-cpp'))})`,
      `const llama = await getLlama({gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, logLevel: LlamaLogLevel.error})`,
      `process.stdout.write(JSON.stringify({buildType: llama.buildType, release: llama.llamaCppRelease.release}) + '\\n')`,
      `await llama.dispose()`,
    ].join('\n'),
  )
  try {
    const result = await runProcess(process.execPath, [probe], {timeoutMs: 120_000, signal})
    const loaded = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as {buildType?: string; release?: string}
    return {version, bindingLoads: true, buildType: loaded.buildType ?? null, llamaCppRelease: loaded.release ?? null}
  } catch (error) {
    if (signal?.aborted) throw error
    return {version, bindingLoads: false, buildType: null, llamaCppRelease: null, error: summarizeFailure(error)}
  } finally {
    rmSync(probeDirectory, {recursive: true, force: true})
  }
}

async function inspectModel(path: string): Promise<ModelReport> {
  const absolute = resolve(path)
  let sizeBytes = 0
  try {
    sizeBytes = statSync(absolute).size
  } catch {
    return {path: absolute, sizeBytes: 0, architecture: null, name: null, fileType: null, error: 'file not found'}
  }
  try {
    const info = await readGgufFileInfo(absolute, {readTensorInfo: false, logWarnings: false, sourceType: 'filesystem'})
    const general = info.metadata.general as {architecture?: string; name?: string; file_type?: number}
    return {
      path: absolute,
      sizeBytes,
      architecture: general.architecture ?? null,
      name: general.name ?? null,
      fileType: general.file_type ?? null,
    }
  } catch (error) {
    return {
      path: absolute,
      sizeBytes,
      architecture: null,
      name: null,
      fileType: null,
      error: `not a readable GGUF: ${firstLine(error)}`,
    }
  }
}

/** GGUF files directly under `directory` and one level below (models/<name>/<file>.gguf). */
export function findGgufFiles(directory: string): string[] {
  if (!existsSync(directory)) return []
  const found: string[] = []
  for (const entry of readdirSync(directory, {withFileTypes: true})) {
    const path = join(directory, entry.name)
    if (entry.isFile() && entry.name.toLowerCase().endsWith('.gguf')) found.push(path)
    else if (entry.isDirectory()) {
      for (const inner of readdirSync(path, {withFileTypes: true})) {
        if (inner.isFile() && inner.name.toLowerCase().endsWith('.gguf')) found.push(join(path, inner.name))
      }
    }
  }
  return found.sort()
}

async function commandWorks(file: string): Promise<boolean> {
  try {
    await runProcess(file, ['--version'], {timeoutMs: 20_000})
    return true
  } catch {
    return false
  }
}

function nearestWritable(path: string): boolean {
  let current = path
  for (;;) {
    if (existsSync(current)) {
      try {
        accessSync(current, constants.W_OK)
        return true
      } catch {
        return false
      }
    }
    const parent = dirname(current)
    if (parent === current) return false
    current = parent
  }
}

/** Runs every check (the slow ones concurrently) and never throws for what it finds missing. */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const modelsDir = options.modelsDir ?? modelsDirectory()
  const modelPaths = findGgufFiles(modelsDir)
  let explicitModel: string | undefined
  let explicitModelError: string | undefined
  if (options.model) {
    try {
      explicitModel = resolveModel(options.model, {directory: modelsDir}).path
    } catch (error) {
      explicitModelError = firstLine(error)
    }
  }
  if (explicitModel && !modelPaths.includes(explicitModel)) modelPaths.push(explicitModel)

  const [binding, server, quantize, models, tools] = await Promise.all([
    checkBinding(options.signal),
    locateWithVersion('llama-server', options.llamaServer, options.signal),
    locateWithVersion('llama-quantize', options.llamaQuantize, options.signal),
    Promise.all(modelPaths.map((path) => inspectModel(path))),
    Promise.all((['git', 'cmake', 'c++'] as const).map(async (tool) => [tool, await commandWorks(tool)] as const)),
  ])

  const checks: DoctorCheck[] = []
  const nodeMajor = Number(process.versions.node.split('.')[0])
  checks.push(
    nodeMajor >= MINIMUM_NODE_MAJOR
      ? {id: 'node', status: 'ok', detail: `Node.js ${process.versions.node}`}
      : {
          id: 'node',
          status: 'missing',
          detail: `Node.js ${process.versions.node} is older than ${MINIMUM_NODE_MAJOR}`,
          nextStep: 'Install Node.js 22 or newer (`. scripts/use-node.sh` installs Node 24 into the cache).',
        },
  )
  const threads = availableParallelism()
  const cpuModel = cpus()[0]?.model ?? 'unknown'
  checks.push({
    id: 'cpu',
    status: 'ok',
    detail: `${threads} thread${threads === 1 ? '' : 's'} available (${cpuModel}); llama-server and the embedded engine use all of them by default`,
  })
  checks.push(
    binding.bindingLoads
      ? {
          id: 'node-llama-cpp',
          status: 'ok',
          detail: `node-llama-cpp ${binding.version}: the ${binding.buildType} CPU binding (llama.cpp ${binding.llamaCppRelease}) loads`,
          ...(binding.buildType === 'prebuilt'
            ? {
                nextStep:
                  '`invagent llama build` also compiles this binding with OpenMP: the embedded engine then decodes 2–3× faster on CPU.',
              }
            : {}),
        }
      : {
          id: 'node-llama-cpp',
          status: 'warn',
          detail: `node-llama-cpp ${binding.version ?? '(not installed)'}: its CPU binding does not load: ${binding.error}`,
          nextStep:
            'Only the embedded engine needs it; the server engine works. Reinstall with `npm ci`, or compile it with `invagent llama build`.',
        },
  )
  checks.push(binaryCheck('llama-server', server), binaryCheck('llama-quantize', quantize))
  const missingTools = tools.filter(([, works]) => !works).map(([tool]) => tool)
  checks.push(
    missingTools.length === 0
      ? {
          id: 'build-tools',
          status: 'ok',
          detail: 'git, cmake and a C++ compiler are installed (needed only by `invagent llama build`)',
        }
      : {
          id: 'build-tools',
          status: 'warn',
          detail: `not installed: ${missingTools.join(', ')} (needed only by \`invagent llama build\`)`,
          nextStep: 'On Debian or Ubuntu: `sudo apt-get install git cmake g++`.',
        },
  )
  const readable = models.filter((model) => !model.error)
  const explicitReport = explicitModel ? models.find((model) => model.path === explicitModel) : undefined
  if (explicitModelError) {
    checks.push({
      id: 'models',
      status: 'missing',
      detail: `--model ${options.model}: ${explicitModelError}`,
      nextStep: 'Give a registered model name (`invagent models list`) or the path of a GGUF file.',
    })
  } else if (explicitReport?.error) {
    checks.push({
      id: 'models',
      status: 'missing',
      detail: `--model ${explicitReport.path}: ${explicitReport.error}`,
      nextStep: 'Give the path of a GGUF file.',
    })
  } else if (readable.length === 0) {
    checks.push({
      id: 'models',
      status: 'warn',
      detail:
        models.length === 0
          ? `no GGUF model under ${modelsDir}`
          : `no readable GGUF model (${models.map((model) => `${model.path}: ${model.error}`).join('; ')})`,
      nextStep: `Put a GGUF file in ${modelsDir} (\`invagent models add\`) or pass --model; the rules engine needs none.`,
    })
  } else {
    const unreadable = models.length - readable.length
    checks.push({
      id: 'models',
      status: unreadable > 0 ? 'warn' : 'ok',
      detail: `${readable.length} GGUF model${readable.length === 1 ? '' : 's'}: ${readable.map((model) => `${model.path} (${model.architecture}, ${(model.sizeBytes / 1024 / 1024).toFixed(1)} MiB)`).join(', ')}${unreadable > 0 ? `; ${unreadable} unreadable` : ''}`,
      ...(unreadable > 0 ? {nextStep: 'Remove or replace the unreadable files (see the models list).'} : {}),
    })
  }
  const cacheDir = invagentCacheDir()
  checks.push(
    nearestWritable(cacheDir)
      ? {id: 'cache', status: 'ok', detail: `${cacheDir} (INVAGENT_CACHE overrides it)`}
      : {
          id: 'cache',
          status: 'warn',
          detail: `${cacheDir} is not writable`,
          nextStep: 'Set INVAGENT_CACHE to a writable folder.',
        },
  )

  const toReport = (located: LocatedBinaryReport | {error: string}): LocatedBinaryReport | null =>
    'path' in located ? located : null
  return {
    ok: checks.every((check) => check.status !== 'missing'),
    checks,
    node: {version: process.versions.node},
    cpu: {threads, model: cpuModel},
    nodeLlamaCpp: binding,
    binaries: {llamaServer: toReport(server), llamaQuantize: toReport(quantize)},
    models,
    cacheDir,
  }
}
