import {execFileSync, spawnSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {delimiter, join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {bundleFilesDirectory} from '../../src/train/bundle.js'
import {temporaryDirectory} from '../helpers/cli.js'
import {fixtureGpuBin} from '../helpers/train-fixture.js'

/*
 * run.sh's environment stage for real, with this machine's Python standing in for the GPU host's: a
 * FIXTURE site of installed distributions (their metadata only) plays the host's packages, a FIXTURE
 * wheel the carried one, and no network is needed. The train stage is a stub that stops the job.
 */

const FIXTURES = resolve(import.meta.dirname, '../fixtures/train')

/** Every package train.py requires, at versions of a working combination (transformers 4.57 + peft 0.17). */
const HOST_PACKAGES: Record<string, string> = {
  torch: '2.11.0',
  transformers: '4.57.6',
  peft: '0.17.1',
  accelerate: '1.10.1',
  safetensors: '0.6.2',
  tokenizers: '0.22.1',
  'huggingface-hub': '0.36.0',
  sentencepiece: '0.2.1',
  numpy: '2.2.6',
  jinja2: '3.1.6',
  pyyaml: '6.0.3',
}

function hostSite(without: string[]): string {
  const site = temporaryDirectory('invagent-host-site-')
  for (const [name, version] of Object.entries(HOST_PACKAGES)) {
    if (without.includes(name)) continue
    const info = join(site, `${name.replaceAll('-', '_')}-${version}.dist-info`)
    mkdirSync(info)
    writeFileSync(join(info, 'METADATA'), `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n`)
  }
  return site
}

function jobFolder(install: string, wheels: boolean): string {
  const dir = temporaryDirectory('invagent-run-env-')
  for (const name of ['run.sh', 'train.py', 'requirements.txt'])
    copyFileSync(join(bundleFilesDirectory(), name), join(dir, name))
  writeFileSync(join(dir, 'config.json'), '{}\n')
  const settings = [
    'JOB_ID=train-fixture',
    'BOOT_PYTHON=python3',
    `INSTALL=${install}`,
    'MIN_FREE_VRAM_MIB=1024',
    'MIN_FREE_DISK_MIB=0',
  ]
  writeFileSync(join(dir, 'job.env'), `${[...settings, 'COMPUTE_DTYPE=bfloat16', 'OUTTYPE=f16'].join('\n')}\n`)
  // FIXTURE stages: check-env reports which peft the chosen Python imports; training stops the job.
  writeFileSync(
    join(dir, 'stages.sh'),
    [
      'check_env() { "$PY" -c \'import json, sys, peft; print("@@invagent " + json.dumps(' +
        '{"event": "fixture-env", "peft": peft.VERSION, "python": sys.executable}))\'; }',
      'train() { return 9; }',
      '',
    ].join('\n'),
  )
  if (wheels) execFileSync('python3', [join(FIXTURES, 'make_wheel.py'), join(dir, 'wheels'), 'peft', '0.17.1', 'peft'])
  return dir
}

function runJob(dir: string, site: string, env: Record<string, string> = {}) {
  const started = Date.now()
  const path = [fixtureGpuBin(40_000), process.env.PATH].join(delimiter)
  const result = spawnSync('bash', ['run.sh'], {
    cwd: dir,
    encoding: 'utf8',
    env: {...process.env, PATH: path, PYTHONPATH: site, ...env},
  })
  const events = result.stdout
    .split('\n')
    .filter((line) => line.startsWith('@@invagent '))
    .map((line) => JSON.parse(line.slice(11)) as Record<string, unknown>)
  return {status: result.status, events, stderr: result.stderr, seconds: (Date.now() - started) / 1000}
}

describe('run.sh environment stage (runtime.install)', () => {
  it(
    "host: uses the host's packages and installs only the missing one from the carried wheels, offline",
    {timeout: 120_000},
    () => {
      const dir = jobFolder('host', true)
      const {events, stderr} = runJob(dir, hostSite(['peft']))
      expect(
        events.find((event) => event.event === 'stage-done' && event.stage === 'environment'),
        stderr,
      ).toBeDefined()
      expect(readFileSync(join(dir, 'out', 'missing.txt'), 'utf8')).toBe('peft==0.17.1\n')
      // The venv sees the host's packages and has the wheel's module.
      expect(events.find((event) => event.event === 'fixture-env')).toMatchObject({
        peft: 'fixture-0.17.1',
        python: join(dir, '.venv', 'bin', 'python'),
      })
      expect(events.find((event) => event.event === 'python')).toMatchObject({
        install: 'host',
        python: join(dir, '.venv', 'bin', 'python'),
      })
      expect(readFileSync(join(dir, 'state', 'python.env'), 'utf8')).toContain('.venv/bin/python')
      // Then the stub train stage stopped the job.
      expect(events.at(-1)).toMatchObject({event: 'stage-failed', stage: 'train', exitCode: 9})
    },
  )

  it(
    "host: with nothing missing, the host's interpreter itself, and a warning per version off the pins",
    {timeout: 60_000},
    () => {
      const dir = jobFolder('host', false)
      const site = hostSite([])
      // A peft module for check-env to import, as the host would have it.
      execFileSync('python3', [join(FIXTURES, 'make_wheel.py'), join(dir, 'w'), 'peft', '0.17.1', 'peft'])
      execFileSync('python3', ['-m', 'zipfile', '-e', join(dir, 'w', 'peft-0.17.1-py3-none-any.whl'), join(dir, 'y')])
      writeFileSync(
        join(site, 'transformers-4.57.6.dist-info', 'METADATA'),
        'Metadata-Version: 2.1\nName: transformers\nVersion: 4.57.1\n',
      )
      const {events, stderr} = runJob(dir, [site, join(dir, 'y')].join(delimiter))
      expect(
        events.find((event) => event.event === 'stage-done' && event.stage === 'environment'),
        stderr,
      ).toBeDefined()
      expect(existsSync(join(dir, '.venv'))).toBe(false)
      expect(events.find((event) => event.event === 'python')).toMatchObject({install: 'host', python: 'python3'})
      expect(events.filter((event) => event.event === 'warning').map((event) => event.message)).toEqual([
        "transformers 4.57.1 is installed, requirements.txt pins 4.57.6 (the host's version is used and recorded in the model's manifest)",
      ])
    },
  )

  it('host: a missing package without carried wheels fails at once, naming it', {timeout: 60_000}, () => {
    const dir = jobFolder('host', false)
    const {status, events, seconds} = runJob(dir, hostSite(['peft']))
    expect(status).toBe(3)
    expect(seconds).toBeLessThan(30)
    const error = events.find((event) => event.event === 'error')
    expect(String(error?.message)).toContain('python3 lacks peft==0.17.1, and the bundle carries no wheels')
  })

  it(
    'venv: no reachable package index fails at once instead of retrying (regression: 90 s of pip retries)',
    {timeout: 60_000},
    () => {
      const dir = jobFolder('venv', false)
      const {status, events, seconds} = runJob(dir, hostSite([]), {PIP_INDEX_URL: 'http://127.0.0.1:9/simple'})
      expect(status).toBe(3)
      expect(seconds).toBeLessThan(30)
      expect(String(events.find((event) => event.event === 'error')?.message)).toContain(
        'pip cannot reach its package index (127.0.0.1:',
      )
    },
  )
})
