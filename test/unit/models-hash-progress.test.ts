import {describe, expect, it} from 'vitest'

import {formatBytes, hashProgressOnTerminal} from '../../src/models/hash-progress.js'

function fakeStream(isTTY: boolean): NodeJS.WriteStream & {written: string[]} {
  const written: string[] = []
  return {isTTY, written, write: (chunk: string) => written.push(chunk) > 0} as unknown as NodeJS.WriteStream & {
    written: string[]
  }
}

describe('hash progress', () => {
  it('stays silent when stderr is not a terminal, and for small files', () => {
    expect(hashProgressOnTerminal(fakeStream(false), 'x')).toBeUndefined()
    const stream = fakeStream(true)
    const progress = hashProgressOnTerminal(stream, 'small')!
    progress(1024, 2048)
    progress(2048, 2048)
    expect(stream.written).toEqual([])
  })

  it('overwrites one line with the percentage for big files, at most ten times a second, and clears it when done', () => {
    const stream = fakeStream(true)
    const progress = hashProgressOnTerminal(stream, 'phi3-q4')!
    const total = 2 * 1024 ** 3
    progress(total / 4, total)
    progress(total / 2, total)
    progress(total, total)
    expect(stream.written).toEqual(['\r\u001B[2Kphi3-q4: sha256 25% (512.0 MiB / 2.00 GiB)', '\r\u001B[2K'])
  })

  it('formats sizes for people', () => {
    expect([formatBytes(812), formatBytes(4608), formatBytes(453_120), formatBytes(2_393_232_672)]).toEqual([
      '812 B',
      '4.5 KiB',
      '442.5 KiB',
      '2.23 GiB',
    ])
  })
})
