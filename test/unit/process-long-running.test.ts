import {describe, expect, it} from 'vitest'

import {ExternalToolError} from '../../src/errors.js'
import {LineRing, spawnLongRunning} from '../../src/process/long-running.js'

const node = process.execPath

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('spawnLongRunning', () => {
  it('keeps only the last stderr lines and streams every line', async () => {
    const lines: string[] = []
    const daemon = spawnLongRunning(
      node,
      ['-e', 'for (let i = 1; i <= 10; i++) console.error("e" + i); console.log("ready"); setInterval(() => {}, 1000)'],
      {
        tailLines: 3,
        onLine: (line, stream) => lines.push(`${stream}:${line}`),
      },
    )
    await waitFor(() => lines.includes('stdout:ready'))
    expect(daemon.stderrTail()).toBe('e8\ne9\ne10')
    expect(lines.filter((line) => line.startsWith('stderr:'))).toHaveLength(10)
    expect(daemon.running).toBe(true)
    const exit = await daemon.stop()
    expect(exit).toMatchObject({signal: 'SIGTERM', stopped: true})
    expect(daemon.running).toBe(false)
    expect(isAlive(daemon.pid!)).toBe(false)
  })

  it('reports an exit it did not ask for, with the stderr tail in failure()', async () => {
    const daemon = spawnLongRunning(node, ['-e', 'console.error("error: model file not found"); process.exit(1)'])
    const exit = await daemon.exited
    expect(exit).toMatchObject({exitCode: 1, stopped: false})
    const error = daemon.failure('llama-server exited before it was ready')
    expect(error).toBeInstanceOf(ExternalToolError)
    expect(error.stderrTail).toBe('error: model file not found')
    expect(error.message).toContain('model file not found')
  })

  it('sends SIGKILL after the grace period to a child that ignores SIGTERM', async () => {
    const daemon = spawnLongRunning(node, [
      '-e',
      'process.on("SIGTERM", () => console.error("ignoring SIGTERM")); console.error("up"); setInterval(() => {}, 1000)',
    ])
    await waitFor(() => daemon.stderrTail().includes('up'))
    const started = Date.now()
    const exit = await daemon.stop(300)
    expect(exit.signal).toBe('SIGKILL')
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    expect(daemon.stderrTail()).toContain('ignoring SIGTERM')
    expect(isAlive(daemon.pid!)).toBe(false)
  })

  it('stop() is idempotent and works after the process has already exited', async () => {
    const daemon = spawnLongRunning(node, ['-e', 'process.exit(0)'])
    await daemon.exited
    const [first, second] = await Promise.all([daemon.stop(), daemon.stop()])
    expect(first).toBe(second)
    expect(first.exitCode).toBe(0)
  })

  it('stops when the abort signal fires, and on `await using`', async () => {
    const controller = new AbortController()
    const daemon = spawnLongRunning(node, ['-e', 'setInterval(() => {}, 1000)'], {signal: controller.signal})
    controller.abort()
    expect((await daemon.exited).stopped).toBe(true)

    let pid: number | undefined
    {
      await using scoped = spawnLongRunning(node, ['-e', 'setInterval(() => {}, 1000)'])
      pid = scoped.pid
      expect(isAlive(pid!)).toBe(true)
    }
    expect(isAlive(pid!)).toBe(false)
  })

  it('reports a command that cannot be started as a spawn error', async () => {
    const daemon = spawnLongRunning('/nonexistent/invagent-daemon', [])
    const exit = await daemon.exited
    expect(exit.spawnError).toBeDefined()
    expect(exit.exitCode).toBeUndefined()
  })
})

describe('LineRing', () => {
  it('keeps the newest lines in order', () => {
    const ring = new LineRing(3)
    for (const line of ['a', 'b']) ring.push(line)
    expect(ring.toArray()).toEqual(['a', 'b'])
    for (const line of ['c', 'd', 'e']) ring.push(line)
    expect(ring.toArray()).toEqual(['c', 'd', 'e'])
    ring.push('f')
    expect(ring.toString()).toBe('d\ne\nf')
  })
})
