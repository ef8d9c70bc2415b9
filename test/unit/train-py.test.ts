import {execFileSync} from 'node:child_process'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {bundleFilesDirectory} from '../../src/train/bundle.js'

/*
 * train.py cannot run here (no GPU, no PyTorch), but its pure helpers can: which tokens carry the
 * loss (assistant turns only, the end-of-turn token included), how the end-of-turn token is found,
 * what is skipped, and the seeded data order. The checks live in a Python file next to the fixtures.
 */

const CHECKS = resolve(import.meta.dirname, '../fixtures/train/check_train_helpers.py')

describe('train.py helpers (plain Python, no torch)', () => {
  it('trains on assistant turns only, with their end-of-turn token, and orders data by seed', () => {
    const output = execFileSync('python3', ['-B', CHECKS, join(bundleFilesDirectory(), 'train.py')], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
    expect(output.trim().split('\n').at(-1)).toBe('ok')
  })
})
