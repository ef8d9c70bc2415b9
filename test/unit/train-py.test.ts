import {execFileSync, spawnSync} from 'node:child_process'
import {copyFileSync, readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {bundleFilesDirectory} from '../../src/train/bundle.js'
import {temporaryDirectory} from '../helpers/cli.js'

/*
 * train.py cannot run here (no GPU, no PyTorch), but its pure helpers can: which tokens carry the
 * loss (assistant turns only, the end-of-turn token included), how the end-of-turn token is found,
 * what is skipped, and the seeded data order. The checks live in a Python file next to the fixtures.
 */

const CHECKS = resolve(import.meta.dirname, '../fixtures/train/check_train_helpers.py')

function events(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('@@invagent '))
    .map((line) => JSON.parse(line.slice('@@invagent '.length)) as Record<string, unknown>)
}

/** train.py with requirements.txt and a config.json in a folder of its own, as in a job bundle. */
function bundleFolder(requirements?: string): string {
  const dir = temporaryDirectory('invagent-train-py-')
  copyFileSync(join(bundleFilesDirectory(), 'train.py'), join(dir, 'train.py'))
  writeFileSync(
    join(dir, 'requirements.txt'),
    requirements ?? readFileSync(join(bundleFilesDirectory(), 'requirements.txt'), 'utf8'),
  )
  writeFileSync(join(dir, 'config.json'), '{}\n')
  return dir
}

describe('train.py helpers (plain Python, no torch)', () => {
  it('trains on assistant turns only, with their end-of-turn token, and orders data by seed', () => {
    const output = execFileSync('python3', ['-B', CHECKS, join(bundleFilesDirectory(), 'train.py')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    expect(output.trim().split('\n').at(-1)).toBe('ok')
  })

  it('probe-env lists what this Python lacks as installable requirements, pinned where the pin fits', () => {
    // This Python has no torch, transformers or peft: each is missing, and with nothing installed the pins fit.
    const dir = bundleFolder()
    const result = spawnSync('python3', ['-B', 'train.py', 'probe-env'], {cwd: dir, encoding: 'utf8'})
    expect(result.status).toBe(0)
    const missing = readFileSync(join(dir, 'out', 'missing.txt'), 'utf8')
      .trim()
      .split('\n')
    expect(missing).toContain('torch==2.11.0')
    expect(missing).toContain('peft==0.17.1')
    const packages = events(result.stdout).find((event) => event.event === 'packages')!
    expect(packages.missing).toContain('transformers')
    expect(packages.python).toMatch(/^3\.\d+\.\d+$/)
  })

  it('probe-env refuses packages that do not work together, naming the combinations that do', () => {
    // A fake site: transformers 5 beside peft 0.17 (peft imports HybridCache, gone in transformers 5).
    const dir = bundleFolder()
    const site = join(dir, 'site')
    for (const [name, version] of [
      ['transformers', '5.17.0'],
      ['peft', '0.17.1'],
      ['huggingface_hub', '1.2.0'],
    ]) {
      const info = join(site, `${name}-${version}.dist-info`)
      execFileSync('mkdir', ['-p', info])
      writeFileSync(
        join(info, 'METADATA'),
        `Metadata-Version: 2.1\nName: ${name.replace('_', '-')}\nVersion: ${version}\n`,
      )
    }
    const result = spawnSync('python3', ['-B', 'train.py', 'probe-env'], {
      cwd: dir,
      encoding: 'utf8',
      env: {...process.env, PYTHONPATH: site},
    })
    expect(result.status).toBe(2)
    const error = events(result.stdout).find((event) => event.event === 'error')!
    expect(String(error.message)).toContain('peft 0.17.1 with transformers 5.17.0: needs peft>=0.18')
    expect(String(error.message)).toContain('transformers 5 with peft 0.18 or later and huggingface_hub 1.x')
    // The host's versions that differ from the pins are warned about, not refused.
    const warnings = events(result.stdout)
      .filter((event) => event.event === 'warning')
      .map((event) => String(event.message))
    expect(
      warnings.some((message) => message.includes('transformers 5.17.0 is installed, requirements.txt pins 4.57.6')),
    ).toBe(true)
  })
})
