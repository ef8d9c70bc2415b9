import {join} from 'node:path'

import {expect, it} from 'vitest'

import {initInventory} from '../../src/simulate/generate.js'
import {temporaryDirectory} from '../helpers/cli.js'

it('reports generation progress about every 5% and ends at the total', () => {
  const calls: Array<[number, number]> = []
  initInventory({
    path: join(temporaryDirectory(), 'inv.db'),
    parts: 203,
    days: 5,
    faults: 4,
    seed: 1,
    onProgress: (done, total) => calls.push([done, total]),
  })
  expect(calls.length).toBeGreaterThanOrEqual(18)
  expect(calls.length).toBeLessThanOrEqual(21)
  expect(calls.at(-1)).toEqual([203, 203])
  expect(calls.every(([done, total], index) => total === 203 && (index === 0 || done > calls[index - 1][0]))).toBe(true)
})
