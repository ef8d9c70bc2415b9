import {createHash} from 'node:crypto'
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import {dirname, join, relative, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

import {ConfigError} from '../errors.js'
import {llamaBuildPaths, llamaSourceInfo} from '../llama/cache.js'
import {quoteArgument, runProcess} from '../process/run-process.js'
import type {TrainConfig} from './config.js'

/*
 * The job bundle: everything the training host needs, and nothing secret.
 *
 *   run.sh            the stages in order, with markers in state/ so a rerun skips what is done
 *   stages.sh         the trainer's commands (train.py by default)
 *   job.env           the few settings run.sh itself needs (interpreter, preflight limits)
 *   train.py          QLoRA training and the 16-bit merge
 *   verify_gguf.py    checks the converted GGUF (standard library only)
 *   requirements.txt  exact versions
 *   config.json       the validated training config, with the data files it reads
 *   data/             train.jsonl (and eval.jsonl): chat messages from the one renderer
 *   llama.cpp/        convert_hf_to_gguf.py, its conversion/ package, gguf-py and the licence,
 *                     from the llama.cpp source `invagent llama build` compiled llama-server from
 *   SHA256SUMS        every other file's sha256 (checked on the host after unpacking)
 */

/** The llama.cpp conversion code a bundle carries, and which source it came from. */
export interface LlamaConversionSource {
  /** The llama.cpp source folder (holds convert_hf_to_gguf.py, conversion/, gguf-py/). */
  dir: string
  tag: string
  commit: string | null
  key: string
}

/** Replaces train.py's stages by other commands (tests run a fixture trainer where there is no GPU). */
export interface TrainerOverride {
  /** The contents of stages.sh. */
  stagesScript: string
  /** Extra files copied into the bundle: bundle-relative name → local path. */
  files: Record<string, string>
}

export interface BuildBundleOptions {
  jobId: string
  config: TrainConfig
  /** Exported chat JSONL (from exportDataset). */
  trainData: string
  evalData?: string
  /** Where the bundle folder goes (replaced if it exists). */
  directory: string
  llama: LlamaConversionSource
  trainer?: TrainerOverride
  /** The name the models are registered under; the GGUF's general.name is made from it. */
  modelName?: string
  /** Also write `<directory>.tar.gz` (what is uploaded). Default true. */
  tarball?: boolean
}

export interface BundleFile {
  path: string
  size: number
  sha256: string
}

export interface BuiltBundle {
  dir: string
  tarball: string | null
  tarballSha256: string | null
  tarballSize: number | null
  files: BundleFile[]
  /** requirements.txt's pins: package → version. */
  pinned: Record<string, string>
}

/** The folder holding run.sh, train.py, … in this installation (source checkout or package). */
export function bundleFilesDirectory(): string {
  let directory = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = join(directory, 'src', 'train', 'bundle-files')
    if (existsSync(join(candidate, 'run.sh'))) return candidate
    const parent = dirname(directory)
    if (parent === directory)
      throw new ConfigError('the training bundle files (src/train/bundle-files) are missing from this installation', {
        suggestions: ['Reinstall invagent.'],
      })
    directory = parent
  }
}

/** Reads the pins of a requirements file: `name==version` lines. */
export function parsePins(text: string): Record<string, string> {
  const pins: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)/.exec(line)
    if (match) pins[match[1].toLowerCase()] = match[2]
  }
  return pins
}

/**
 * The conversion code of the llama.cpp source that `invagent llama build` compiled, so that the
 * GGUF made on the training host is one the local llama-server reads. Fails with the next step
 * when that source is not in the cache.
 */
export async function locateLlamaConversion(env: NodeJS.ProcessEnv = process.env): Promise<LlamaConversionSource> {
  const info = await llamaSourceInfo()
  const paths = llamaBuildPaths(info.key, env)
  if (
    !existsSync(join(paths.sourceDir, 'convert_hf_to_gguf.py')) ||
    !existsSync(join(paths.sourceDir, 'gguf-py', 'gguf'))
  ) {
    throw new ConfigError(
      `the llama.cpp ${info.tag} source is not in the cache (${paths.sourceDir}): the bundle takes convert_hf_to_gguf.py and gguf-py from it, so that the GGUF matches the local llama-server.`,
      {
        code: 'LLAMA_SOURCE_MISSING',
        suggestions: [
          'Run `invagent llama build` once (about 8 minutes on 2 cores); it keeps the source next to the binaries.',
        ],
      },
    )
  }
  let commit: string | null = null
  try {
    const buildInfo = JSON.parse(readFileSync(paths.infoFile, 'utf8')) as {cmakeFlags?: string[]}
    commit = buildInfo.cmakeFlags?.map((flag) => /^-DLLAMA_BUILD_COMMIT=(.+)$/.exec(flag)?.[1]).find(Boolean) ?? null
  } catch {
    commit = null
  }
  return {dir: paths.sourceDir, tag: info.tag, commit, key: info.key}
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

function listFiles(root: string, directory = root): string[] {
  const files: string[] = []
  // Code-point order, not the locale's: the same listing everywhere.
  for (const entry of readdirSync(directory, {withFileTypes: true}).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  )) {
    const path = join(directory, entry.name)
    if (entry.isDirectory()) files.push(...listFiles(root, path))
    else if (entry.isFile()) files.push(relative(root, path).split(sep).join('/'))
  }
  return files
}

/** Copies a folder without Python caches and without tests/examples (they do not run on the host). */
function copyTree(from: string, to: string): void {
  cpSync(from, to, {
    recursive: true,
    filter: (source) => {
      const name = source.slice(from.length)
      return !/(^|[/\\])(__pycache__|tests?|examples)([/\\]|$)|\.pyc$/.test(name)
    },
  })
}

/** The .whl files of a folder into the bundle's wheels/ (what the host installs with --no-index). */
function copyWheels(from: string, to: string): void {
  if (!existsSync(from) || !statSync(from).isDirectory()) {
    throw new ConfigError(`runtime.wheels ${from}: no such folder`, {
      code: 'TRAIN_CONFIG_INVALID',
      suggestions: [
        'Give a folder of .whl files (`pip download --only-binary=:all: --dest DIR PACKAGE==VERSION` on a machine with a network).',
      ],
    })
  }
  const wheels = readdirSync(from).filter((name) => name.endsWith('.whl'))
  if (wheels.length === 0) {
    throw new ConfigError(`runtime.wheels ${from} holds no .whl file`, {code: 'TRAIN_CONFIG_INVALID'})
  }
  mkdirSync(to, {recursive: true})
  for (const name of wheels) copyFileSync(join(from, name), join(to, name))
}

/** job.env: shell assignments run.sh sources (values quoted for the shell). */
export function renderJobEnv(jobId: string, config: TrainConfig): string {
  const values: Array<[string, string]> = [
    ['JOB_ID', jobId],
    ['BOOT_PYTHON', config.runtime.python],
    ['INSTALL', config.runtime.install],
    ['MIN_FREE_VRAM_MIB', String(Math.round(config.runtime.minFreeVramGiB * 1024))],
    ['MIN_FREE_DISK_MIB', String(Math.round(config.runtime.minFreeDiskGiB * 1024))],
    ['COMPUTE_DTYPE', config.quantization.computeDtype],
    ['OUTTYPE', config.convert.outType],
  ]
  return `# Settings of job ${jobId}, read by run.sh.\n${values.map(([key, value]) => `${key}=${quoteArgument(value)}`).join('\n')}\n`
}

/** config.json: the validated config plus the data files, as train.py reads it. */
export function renderBundleConfig(jobId: string, config: TrainConfig, hasEval: boolean, modelName?: string): string {
  const document = {
    jobId,
    ...(modelName ? {modelName} : {}),
    ...config,
    data: {train: 'data/train.jsonl', eval: hasEval ? 'data/eval.jsonl' : null},
  }
  return `${JSON.stringify(document, (_key, value: unknown) => (value === undefined ? null : value), 2)}\n`
}

/**
 * Writes the bundle folder (assembled next to it, then renamed into place) and, unless told not
 * to, its tarball. The same inputs give the same files.
 */
export async function buildJobBundle(options: BuildBundleOptions): Promise<BuiltBundle> {
  const assets = bundleFilesDirectory()
  const work = `${options.directory}.partial-${process.pid}`
  rmSync(work, {recursive: true, force: true})
  mkdirSync(join(work, 'data'), {recursive: true})
  try {
    for (const name of ['run.sh', 'stages.sh', 'train.py', 'verify_gguf.py', 'requirements.txt'])
      copyFileSync(join(assets, name), join(work, name))
    if (options.trainer) {
      writeFileSync(join(work, 'stages.sh'), options.trainer.stagesScript)
      for (const [name, path] of Object.entries(options.trainer.files)) {
        mkdirSync(dirname(join(work, name)), {recursive: true})
        copyFileSync(path, join(work, name))
      }
    }
    chmodSync(join(work, 'run.sh'), 0o755)
    writeFileSync(join(work, 'job.env'), renderJobEnv(options.jobId, options.config))
    writeFileSync(
      join(work, 'config.json'),
      renderBundleConfig(options.jobId, options.config, options.evalData !== undefined, options.modelName),
    )
    if (options.config.runtime.wheels !== undefined) copyWheels(options.config.runtime.wheels, join(work, 'wheels'))
    copyFileSync(options.trainData, join(work, 'data', 'train.jsonl'))
    if (options.evalData !== undefined) copyFileSync(options.evalData, join(work, 'data', 'eval.jsonl'))

    const llama = join(work, 'llama.cpp')
    mkdirSync(llama)
    copyFileSync(join(options.llama.dir, 'convert_hf_to_gguf.py'), join(llama, 'convert_hf_to_gguf.py'))
    if (existsSync(join(options.llama.dir, 'conversion')))
      copyTree(join(options.llama.dir, 'conversion'), join(llama, 'conversion'))
    copyTree(join(options.llama.dir, 'gguf-py', 'gguf'), join(llama, 'gguf-py', 'gguf'))
    for (const name of ['LICENSE'])
      if (existsSync(join(options.llama.dir, name))) copyFileSync(join(options.llama.dir, name), join(llama, name))
    writeFileSync(
      join(llama, 'SOURCE.json'),
      `${JSON.stringify({tag: options.llama.tag, commit: options.llama.commit, key: options.llama.key}, null, 2)}\n`,
    )

    // sha256sum's own format, so the host checks the unpacked bundle with `sha256sum --check`.
    const sums = listFiles(work).map((path) => `${sha256(join(work, path))}  ${path}`)
    writeFileSync(join(work, 'SHA256SUMS'), `${sums.join('\n')}\n`)

    rmSync(options.directory, {recursive: true, force: true})
    mkdirSync(dirname(options.directory), {recursive: true})
    renameSync(work, options.directory)
  } catch (error) {
    rmSync(work, {recursive: true, force: true})
    throw error
  }

  const files = listFiles(options.directory).map((path) => ({
    path,
    size: statSync(join(options.directory, path)).size,
    sha256: sha256(join(options.directory, path)),
  }))
  const pinned = parsePins(readFileSync(join(options.directory, 'requirements.txt'), 'utf8'))
  if (options.tarball === false)
    return {dir: options.directory, tarball: null, tarballSha256: null, tarballSize: null, files, pinned}

  const tarball = `${options.directory}.tar.gz`
  const temporary = `${tarball}.${process.pid}.partial`
  try {
    // Sorted names, fixed owner and time: the tarball depends on the files only.
    await runProcess('tar', [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-I',
      'gzip -n',
      '-cf',
      temporary,
      '-C',
      options.directory,
      '.',
    ])
    renameSync(temporary, tarball)
  } finally {
    rmSync(temporary, {force: true})
  }
  return {
    dir: options.directory,
    tarball,
    tarballSha256: sha256(tarball),
    tarballSize: statSync(tarball).size,
    files,
    pinned,
  }
}
