import {execFileSync} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {buildJobBundle, bundleFilesDirectory, parsePins} from '../../src/train/bundle.js'
import {validateTrainConfig} from '../../src/train/config-file.js'
import {temporaryDirectory} from '../helpers/cli.js'
import {fixtureLlamaSource} from '../helpers/train-fixture.js'

/*
 * Golden test of the job bundle: the exact list of files, each one's size and sha256, and the
 * full text of the generated ones. A change to train.py, run.sh, the requirements or the config
 * rendering shows up here; if it is intended, regenerate the golden file with
 *   UPDATE_GOLDEN=1 npx vitest run test/unit/train-bundle.test.ts
 * and review the diff.
 */

const GOLDEN = resolve(import.meta.dirname, '../golden/train-bundle.json')

/** Exported chat lines as `dataset export` writes them (fixed text: the golden must not follow the renderer). */
function writeChatDataset(path: string, count: number, seed = 0): string {
  const lines = Array.from({length: count}, (_, index) => {
    const n = String(index + seed).padStart(6, '0')
    return JSON.stringify({
      id: `example-${n}`,
      messages: [
        {role: 'system', content: 'You are invagent.'},
        {role: 'user', content: `Finding: negative_on_hand on P-${n}`},
        {role: 'assistant', content: `{"thought": "read the part", "tool": "get_part", "args": {"part_id": "P-${n}"}}`},
      ],
    })
  })
  writeFileSync(path, `${lines.join('\n')}\n`)
  return path
}

async function buildFixedBundle(directory: string) {
  const work = temporaryDirectory()
  const data = writeChatDataset(join(work, 'train.jsonl'), 3)
  const evalData = writeChatDataset(join(work, 'eval.jsonl'), 2, 50)
  // The llama.cpp source as a fixed stand-in, so the golden does not depend on the cached build.
  const llama = fixtureLlamaSource()
  const config = validateTrainConfig({
    baseModel: 'microsoft/Phi-3-mini-4k-instruct',
    lora: {r: 8},
    training: {epochs: 1, evalSteps: 5},
    runtime: {python: 'python3.11'},
    quant: 'Q5_K_M',
  })
  return buildJobBundle({jobId: 'train-20260101-000000-0000', config, trainData: data, evalData, directory, llama})
}

describe('the job bundle', () => {
  it('matches the golden file: every file, its size and sha256, and the generated files in full', async () => {
    const bundle = await buildFixedBundle(join(temporaryDirectory(), 'bundle'))
    const actual = {
      files: bundle.files,
      generated: Object.fromEntries(
        ['config.json', 'job.env', 'SHA256SUMS', 'llama.cpp/SOURCE.json'].map((name) => [
          name,
          readFileSync(join(bundle.dir, name), 'utf8'),
        ]),
      ),
      pinned: bundle.pinned,
    }
    if (process.env.UPDATE_GOLDEN) {
      mkdirSync(resolve(GOLDEN, '..'), {recursive: true})
      writeFileSync(GOLDEN, `${JSON.stringify(actual, null, 2)}\n`)
    }
    expect(actual).toEqual(JSON.parse(readFileSync(GOLDEN, 'utf8')))
  })

  it('holds what the host needs and nothing else', async () => {
    const bundle = await buildFixedBundle(join(temporaryDirectory(), 'bundle'))
    const paths = bundle.files.map((file) => file.path)
    expect(paths).toEqual([
      'SHA256SUMS',
      'config.json',
      'data/eval.jsonl',
      'data/train.jsonl',
      'job.env',
      'llama.cpp/LICENSE',
      'llama.cpp/SOURCE.json',
      'llama.cpp/conversion/__init__.py',
      'llama.cpp/convert_hf_to_gguf.py',
      'llama.cpp/gguf-py/gguf/__init__.py',
      'requirements.txt',
      'run.sh',
      'stages.sh',
      'train.py',
      'verify_gguf.py',
    ])
    expect(statSync(join(bundle.dir, 'run.sh')).mode & 0o111).not.toBe(0)
    // Every other file is listed in SHA256SUMS, which sha256sum on the host checks.
    execFileSync('sha256sum', ['--check', '--quiet', '--strict', 'SHA256SUMS'], {cwd: bundle.dir})
    const config = JSON.parse(readFileSync(join(bundle.dir, 'config.json'), 'utf8'))
    expect(config).toMatchObject({
      jobId: 'train-20260101-000000-0000',
      lora: {r: 8, alpha: 32, targetModules: 'all-linear'},
      training: {learningRate: 2e-4, epochs: 1, maxLength: 2048},
      seed: 42,
      data: {train: 'data/train.jsonl', eval: 'data/eval.jsonl'},
    })
    // The host's own Python by default (no network, no venv that would hide the host's torch).
    expect(readFileSync(join(bundle.dir, 'job.env'), 'utf8')).toContain(
      'BOOT_PYTHON=python3.11\nINSTALL=host\nMIN_FREE_VRAM_MIB=12288\n',
    )
    // No credentials or machine-specific values: nothing from this environment leaks in.
    const everything = bundle.files
      .filter((file) => !file.path.startsWith('llama.cpp/'))
      .map((file) => readFileSync(join(bundle.dir, file.path), 'utf8'))
      .join('\n')
    for (const value of [process.env.HOME, process.env.USER, process.cwd()].filter(
      (value): value is string => value !== undefined && value.length > 3,
    ))
      expect(everything).not.toContain(value)
  })

  it('carries the wheels of runtime.wheels, for what the host lacks, and reads the older install spellings', async () => {
    const wheels = temporaryDirectory('invagent-wheels-')
    writeFileSync(join(wheels, 'peft-0.18.1-py3-none-any.whl'), 'wheel')
    writeFileSync(join(wheels, 'notes.txt'), 'not a wheel')
    const work = temporaryDirectory()
    const config = validateTrainConfig({baseModel: '/models/phi3', runtime: {wheels, install: true}})
    expect(config.runtime.install).toBe('venv')
    expect(validateTrainConfig({runtime: {install: false}}).runtime.install).toBe('none')
    const trainData = writeChatDataset(join(work, 'train.jsonl'), 2)
    const common = {trainData, llama: fixtureLlamaSource(), tarball: false}
    const bundle = await buildJobBundle({
      ...common,
      jobId: 'train-20260101-000000-0001',
      config,
      directory: join(work, 'bundle'),
      modelName: 'phi3-run',
    })
    const paths = bundle.files.map((file) => file.path)
    expect(paths).toContain('wheels/peft-0.18.1-py3-none-any.whl')
    expect(paths).not.toContain('wheels/notes.txt')
    expect(readFileSync(join(bundle.dir, 'job.env'), 'utf8')).toContain('INSTALL=venv\n')
    expect(JSON.parse(readFileSync(join(bundle.dir, 'config.json'), 'utf8'))).toMatchObject({
      modelName: 'phi3-run',
      baseModel: '/models/phi3',
    })
    const noWheels = validateTrainConfig({runtime: {wheels: join(work, 'none')}})
    await expect(
      buildJobBundle({...common, jobId: 'x', config: noWheels, directory: join(work, 'b2')}),
    ).rejects.toThrow('runtime.wheels')
  })

  it('pins every requirement to an exact version', () => {
    const text = readFileSync(join(bundleFilesDirectory(), 'requirements.txt'), 'utf8')
    const requirementLines = text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'))
    expect(requirementLines.length).toBeGreaterThan(5)
    for (const line of requirementLines) expect(line).toMatch(/^[A-Za-z0-9_.-]+==\d+(\.\d+)+$/)
    expect(Object.keys(parsePins(text))).toEqual(
      expect.arrayContaining([
        'torch',
        'transformers',
        'peft',
        'bitsandbytes',
        'accelerate',
        'safetensors',
        'numpy',
        'sentencepiece',
      ]),
    )
  })

  it('gives the same tarball for the same inputs', async () => {
    const first = await buildFixedBundle(join(temporaryDirectory(), 'bundle'))
    const second = await buildFixedBundle(join(temporaryDirectory(), 'bundle'))
    expect(first.tarballSha256).toBe(second.tarballSha256)
    const listing = execFileSync('tar', ['-tzf', first.tarball!], {encoding: 'utf8'})
    expect(listing).toContain('./run.sh')
    expect(listing).not.toContain('__pycache__')
  })

  it('has a train.py and verify_gguf.py that compile, and shell scripts that parse', () => {
    const copy = temporaryDirectory()
    cpSync(bundleFilesDirectory(), copy, {recursive: true})
    execFileSync('python3', ['-m', 'py_compile', 'train.py', 'verify_gguf.py'], {cwd: copy})
    expect(existsSync(join(copy, '__pycache__'))).toBe(true)
    execFileSync('bash', ['-n', 'run.sh'], {cwd: copy})
    execFileSync('bash', ['-n', 'stages.sh'], {cwd: copy})
    // And the GPU smoke test's scripts, which run only on a GPU machine.
    const scripts = resolve(import.meta.dirname, '../../scripts')
    const compiled = temporaryDirectory()
    const compile = 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)'
    for (const name of ['tiny_phi3.py', 'gpu_smoke_report.py'])
      execFileSync('python3', ['-c', compile, join(scripts, name), join(compiled, `${name}c`)])
    execFileSync('bash', ['-n', join(scripts, 'gpu-smoke.sh')])
  })
})
