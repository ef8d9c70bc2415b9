import {chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import type {TrainerOverride} from '../../src/train/bundle.js'
import {temporaryDirectory} from './cli.js'

/*
 * The pieces a training test needs where there is no GPU: the FIXTURE trainer (bundled into one
 * .mjs so the "host" needs only node), its stages.sh, a FIXTURE nvidia-smi, and a small chat
 * dataset.
 */

const FIXTURES = resolve(import.meta.dirname, '../fixtures/train')

/** Bundles fixture-trainer.ts (and the tiny-GGUF helper it imports) into one file. */
export async function buildFixtureTrainer(directory = temporaryDirectory('invagent-fixture-')): Promise<string> {
  const output = join(directory, 'fixture-trainer.mjs')
  const {build} = await import('rolldown')
  await build({
    input: join(FIXTURES, 'fixture-trainer.ts'),
    platform: 'node',
    write: true,
    output: {file: output, format: 'esm'},
    logLevel: 'silent',
  })
  return output
}

/** The trainer override for a bundle: the fixture trainer, its stages.sh, and fixture.json. */
export function fixtureTrainer(
  trainerFile: string,
  settings: {
    steps: number
    stepMs: number
    failStage?: string
    probe?: {text: string; ids: number[]}
    ggufName?: string
  },
): TrainerOverride {
  const directory = temporaryDirectory('invagent-fixture-settings-')
  writeFileSync(join(directory, 'fixture.json'), JSON.stringify(settings))
  return {
    stagesScript: readFileSync(join(FIXTURES, 'fixture-stages.sh'), 'utf8'),
    files: {'fixture-trainer.mjs': trainerFile, 'fixture.json': join(directory, 'fixture.json')},
  }
}

/** A folder with the FIXTURE nvidia-smi reporting `freeMiB` of free GPU memory. */
export function fixtureGpuBin(freeMiB = 80_000): string {
  const directory = temporaryDirectory('invagent-fixture-bin-')
  copyFileSync(join(FIXTURES, 'bin', 'nvidia-smi'), join(directory, 'nvidia-smi'))
  chmodSync(join(directory, 'nvidia-smi'), 0o755)
  writeFileSync(join(directory, 'fixture-gpu.env'), `FIXTURE_GPU_FREE_MIB=${freeMiB}\n`)
  return directory
}

const SHIPPED = resolve(import.meta.dirname, '../../datasets')

/** The first `count` examples of a shipped dataset (datasets/playbook.jsonl or eval.jsonl): real examples, trimmed. */
export function writePlaybookDataset(path: string, count: number, split: 'playbook' | 'eval' = 'playbook'): string {
  mkdirSync(resolve(path, '..'), {recursive: true})
  const lines = readFileSync(join(SHIPPED, `${split}.jsonl`), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
  if (lines.length < count)
    throw new Error(`datasets/${split}.jsonl has ${lines.length} examples, ${count} were asked for`)
  writeFileSync(path, `${lines.slice(0, count).join('\n')}\n`)
  return path
}

/** A stand-in llama.cpp source folder with the files a bundle takes (for tests that must not need `llama build`). */
export function fixtureLlamaSource(): {dir: string; tag: string; commit: string; key: string} {
  const dir = temporaryDirectory('invagent-llama-source-')
  writeFileSync(
    join(dir, 'convert_hf_to_gguf.py'),
    '# FIXTURE: stands in for llama.cpp\'s converter\nimport sys\nsys.exit("not the real converter")\n',
  )
  mkdirSync(join(dir, 'conversion'))
  writeFileSync(join(dir, 'conversion', '__init__.py'), '# FIXTURE\n')
  mkdirSync(join(dir, 'conversion', '__pycache__'))
  writeFileSync(join(dir, 'conversion', '__pycache__', 'x.pyc'), 'cache')
  mkdirSync(join(dir, 'gguf-py', 'gguf'), {recursive: true})
  writeFileSync(join(dir, 'gguf-py', 'gguf', '__init__.py'), '# FIXTURE\n')
  mkdirSync(join(dir, 'gguf-py', 'tests'))
  writeFileSync(join(dir, 'gguf-py', 'tests', 'test_x.py'), '# FIXTURE: not bundled\n')
  writeFileSync(join(dir, 'LICENSE'), 'MIT License (fixture)\n')
  return {dir, tag: 'v0.0.0-fixture', commit: 'abc1234', key: 'v0.0.0-fixture-key'}
}
