import {existsSync, mkdirSync, renameSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {ConfigError, didYouMean} from '../errors.js'
import {resolveModel} from '../models/registry.js'
import {runProcess} from '../process/run-process.js'
import {llamaBuildPaths, llamaCacheRoot, llamaSourceInfo} from './cache.js'

/*
 * Real tokenizers without the model: llama.cpp's source carries vocabulary-only GGUFs of the
 * model families it tests (models/ggml-vocab-<name>.gguf: phi-3, llama-spm, llama-bpe, qwen2, …),
 * each with the family's tokenizer and chat template. node-llama-cpp ships that source as a git
 * bundle, so token lengths can be measured exactly as the family's model would count them on a
 * machine that has never downloaded a 2 GB model. One file is taken out of the bundle on first
 * use and kept in the cache:
 *
 *   <cache>/llama.cpp/<key>-vocab/ggml-vocab-<name>.gguf
 */

const VOCAB_FILE = /^ggml-vocab-([\w.-]+)\.gguf$/

/** The model families whose base models `train` knows the bundled vocabulary of. */
const BASE_MODEL_VOCABS: ReadonlyArray<readonly [RegExp, string]> = [[/(^|\/)phi-3(\.5)?-mini/i, 'phi-3']]

/** The bundled vocabulary of a Hugging Face base model id, when its family is known. */
export function vocabForBaseModel(baseModel: string): string | undefined {
  return BASE_MODEL_VOCABS.find(([pattern]) => pattern.test(baseModel))?.[1]
}

function vocabCacheDir(key: string, env: NodeJS.ProcessEnv): string {
  return join(llamaCacheRoot(env), `${key}-vocab`)
}

/** A scratch bare repository holding the bundle's tree; removed by the caller. */
async function fetchBundle(bundlePath: string, scratch: string): Promise<void> {
  rmSync(scratch, {recursive: true, force: true})
  mkdirSync(scratch, {recursive: true})
  await runProcess('git', ['init', '--quiet', '--bare', join(scratch, 'repo.git')])
  await runProcess('git', ['--git-dir', join(scratch, 'repo.git'), 'fetch', '--quiet', bundlePath, 'HEAD'], {
    suggestions: ['The llama.cpp source bundle of node-llama-cpp could not be read: run `npm ci` to reinstall it.'],
  })
}

async function bundleVocabNames(scratch: string): Promise<string[]> {
  const {stdout} = await runProcess('git', [
    '--git-dir',
    join(scratch, 'repo.git'),
    'ls-tree',
    '--name-only',
    'FETCH_HEAD',
    'models/',
  ])
  return namesOf(stdout.split('\n').map((path) => path.replace(/^models\//, '')))
}

function namesOf(files: readonly string[]): string[] {
  return files.flatMap((file) => VOCAB_FILE.exec(file)?.[1] ?? []).sort()
}

/**
 * The path of a bundled vocabulary GGUF, taken out of llama.cpp's source on first use. Fails with
 * the list of names when there is no such vocabulary.
 */
export async function bundledVocab(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return (await bundledVocabFiles(name, [''], env))[0]
}

/**
 * A bundled vocabulary with llama.cpp's reference tokenizations of it: `<name>.gguf.inp` holds the
 * test texts (separated by `__ggml_vocab_test__` lines), `.out` the token ids of each, one line per text.
 */
export async function bundledVocabReference(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{gguf: string; inp: string; out: string}> {
  const [gguf, inp, out] = await bundledVocabFiles(name, ['', '.inp', '.out'], env)
  return {gguf, inp, out}
}

/** The GGUF of a bundled vocabulary and its companion files (suffixes after `.gguf`), each taken out once. */
async function bundledVocabFiles(name: string, suffixes: readonly string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const file = `ggml-vocab-${name}.gguf`
  if (!VOCAB_FILE.test(file)) throw unknownVocab(name, [])
  const info = await llamaSourceInfo()
  const models = join(llamaBuildPaths(info.key, env).sourceDir, 'models')
  const unpacked = suffixes.map((suffix) => join(models, `${file}${suffix}`))
  if (unpacked.every((path) => existsSync(path))) return unpacked
  const directory = vocabCacheDir(info.key, env)
  const cached = suffixes.map((suffix) => join(directory, `${file}${suffix}`))
  if (cached.every((path) => existsSync(path))) return cached

  const scratch = join(directory, `.scratch-${process.pid}`)
  try {
    await fetchBundle(info.bundlePath, scratch)
    const names = await bundleVocabNames(scratch)
    if (!names.includes(name)) throw unknownVocab(name, names)
    // Checked out as files (binary-safe), then renamed into place: a reader never sees half of one.
    const tree = join(scratch, 'tree')
    mkdirSync(tree, {recursive: true})
    const paths = suffixes.map((suffix) => `models/${file}${suffix}`)
    await runProcess('git', [
      '--git-dir',
      join(scratch, 'repo.git'),
      '--work-tree',
      tree,
      'checkout',
      '--quiet',
      'FETCH_HEAD',
      '--',
      ...paths,
    ])
    paths.forEach((path, index) => {
      if (!existsSync(cached[index])) renameSync(join(tree, path), cached[index])
    })
    return cached
  } finally {
    rmSync(scratch, {recursive: true, force: true})
  }
}

function unknownVocab(name: string, names: readonly string[]): ConfigError {
  const guess = didYouMean(name, names)
  return new ConfigError(
    `no model, GGUF file or bundled vocabulary is called "${name}"${guess ? ` — did you mean "${guess}"?` : ''}`,
    {
      code: 'UNKNOWN_VOCAB',
      suggestions: [
        `Give a registered model (invagent models list), the path of a .gguf file, or a vocabulary llama.cpp ships${names.length > 0 ? `: ${names.join(', ')}` : ''}.`,
      ],
    },
  )
}

/**
 * What a `--model` that only needs a tokenizer means: a registered model or a GGUF path as
 * everywhere else, and failing those the name of a vocabulary llama.cpp ships (`phi-3`), so that
 * lengths can be measured before any model is downloaded.
 */
export async function resolveTokenizerModel(
  value: string,
  options: {env?: NodeJS.ProcessEnv; resolve?: (value: string) => {path: string}} = {},
): Promise<{path: string; bundled: boolean}> {
  const resolveRegistered = options.resolve ?? resolveModel
  try {
    return {path: resolveRegistered(value).path, bundled: false}
  } catch (error) {
    if ((error as {code?: string}).code !== 'MODEL_UNKNOWN') throw error
    return {path: await bundledVocab(value, options.env), bundled: true}
  }
}
