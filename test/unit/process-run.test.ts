import {describe, expect, it} from 'vitest'

import {ExternalToolError} from '../../src/errors.js'
import {isDebugEnabled} from '../../src/process/debug-log.js'
import {formatCommandLine, lastLines, runProcess, type OutputStreamName} from '../../src/process/run-process.js'

const node = process.execPath

describe('runProcess', () => {
  it('returns stdout, stderr and the exit code of a command that succeeds', async () => {
    const result = await runProcess(node, ['-e', 'process.stdout.write("out\\n"); process.stderr.write("err\\n")'])
    expect(result).toMatchObject({stdout: 'out', stderr: 'err', exitCode: 0})
    expect(result.command).toContain(node)
    expect(result.durationMs).toBeGreaterThanOrEqual(0)
  })

  it('passes env and cwd to the child', async () => {
    const result = await runProcess(
      node,
      ['-e', 'console.log(process.env.INVAGENT_TEST_VALUE + " " + process.cwd())'],
      {
        env: {INVAGENT_TEST_VALUE: 'forty two'},
        cwd: '/tmp',
      },
    )
    expect(result.stdout).toBe('forty two /tmp')
  })

  it('removes a variable given as undefined', async () => {
    process.env.INVAGENT_TEST_REMOVED = 'present'
    try {
      const result = await runProcess(node, ['-e', 'console.log(String(process.env.INVAGENT_TEST_REMOVED))'], {
        env: {INVAGENT_TEST_REMOVED: undefined},
      })
      expect(result.stdout).toBe('undefined')
    } finally {
      delete process.env.INVAGENT_TEST_REMOVED
    }
  })

  it('throws ExternalToolError with the command line, exit code and the last 40 lines of stderr', async () => {
    const script = 'for (let i = 1; i <= 100; i++) console.error("line " + i); process.exit(3)'
    const error = await runProcess(node, ['-e', script]).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(ExternalToolError)
    const toolError = error as ExternalToolError
    expect(toolError.processExitCode).toBe(3)
    expect(toolError.command).toContain('-e')
    expect(toolError.message).toContain('exited with code 3')
    const tail = toolError.stderrTail.split('\n')
    expect(tail).toHaveLength(40)
    expect(tail[0]).toBe('line 61')
    expect(tail.at(-1)).toBe('line 100')
    expect(toolError.message).toContain('line 100')
    expect(toolError.message).not.toContain('line 60\n')
  })

  it('falls back to the tail of stdout when a failing command wrote nothing to stderr', async () => {
    const error = (await runProcess(node, ['-e', 'console.log("compile error here"); process.exit(2)']).catch(
      (error_: unknown) => error_,
    )) as ExternalToolError
    expect(error.stderrTail).toBe('compile error here')
  })

  it('accepts extra exit codes as success', async () => {
    const result = await runProcess(node, ['-e', 'process.exit(1)'], {okExitCodes: [0, 1]})
    expect(result.exitCode).toBe(1)
  })

  it('says "command not found" for a missing executable', async () => {
    const error = (await runProcess('/nonexistent/invagent-no-such-tool', ['--version']).catch(
      (error_: unknown) => error_,
    )) as ExternalToolError
    expect(error).toBeInstanceOf(ExternalToolError)
    expect(error.message).toContain('command not found')
    expect(error.processExitCode).toBeUndefined()
  })

  it('streams every line to onLine while keeping the full output', async () => {
    const seen: Array<[string, OutputStreamName]> = []
    const result = await runProcess(node, ['-e', 'console.log("a"); console.error("b"); console.log("c")'], {
      onLine: (line, stream) => seen.push([line, stream]),
    })
    expect(seen.filter(([, stream]) => stream === 'stdout').map(([line]) => line)).toEqual(['a', 'c'])
    expect(seen.filter(([, stream]) => stream === 'stderr').map(([line]) => line)).toEqual(['b'])
    expect(result.stdout).toBe('a\nc')
  })

  it('kills the child when the signal is aborted and rejects with the reason', async () => {
    const controller = new AbortController()
    const started = Date.now()
    const running = runProcess(node, ['-e', 'setTimeout(() => {}, 60_000)'], {signal: controller.signal})
    setTimeout(() => controller.abort(new Error('user pressed Ctrl+C')), 200)
    await expect(running).rejects.toThrow('user pressed Ctrl+C')
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('does not start at all when the signal is already aborted', async () => {
    const controller = new AbortController()
    controller.abort(new Error('too late'))
    await expect(
      runProcess(node, ['-e', 'require("fs").writeFileSync("/tmp/should-not-exist", "")'], {signal: controller.signal}),
    ).rejects.toThrow('too late')
  })

  it('kills a child that outlives its timeout, with SIGKILL when it ignores SIGTERM', async () => {
    const script = 'process.on("SIGTERM", () => {}); console.error("stubborn"); setInterval(() => {}, 1000)'
    const started = Date.now()
    const error = (await runProcess(node, ['-e', script], {timeoutMs: 500, killGraceMs: 300}).catch(
      (error_: unknown) => error_,
    )) as ExternalToolError
    expect(error).toBeInstanceOf(ExternalToolError)
    expect(error.message).toContain('timed out after 500 ms')
    expect(error.stderrTail).toContain('stubborn')
    expect(Date.now() - started).toBeLessThan(10_000)
  })
})

describe('runProcess with a process group', () => {
  const isAlive = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  // A parent that forks a worker (as cmake forks make and the compilers) and prints its pid.
  const parentWithWorker = `
    const {spawn} = require('node:child_process');
    const worker = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {stdio: 'ignore'});
    console.log('worker ' + worker.pid);
    setInterval(() => {}, 1000);`

  it('cancels the whole group, so no worker outlives its parent', async () => {
    const controller = new AbortController()
    let workerPid = 0
    const running = runProcess(node, ['-e', parentWithWorker], {
      processGroup: true,
      signal: controller.signal,
      onLine: (line) => {
        const match = /^worker (\d+)$/.exec(line)
        if (match) {
          workerPid = Number(match[1])
          controller.abort(new Error('stop the build'))
        }
      },
    })
    await expect(running).rejects.toThrow('stop the build')
    expect(workerPid).toBeGreaterThan(0)
    const deadline = Date.now() + 5000
    while (isAlive(workerPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(isAlive(workerPid)).toBe(false)
  })

  it('times out the whole group with an ExternalToolError', async () => {
    let workerPid = 0
    const error = (await runProcess(node, ['-e', parentWithWorker], {
      processGroup: true,
      timeoutMs: 1000,
      onLine: (line) => (workerPid = Number(/^worker (\d+)$/.exec(line)?.[1] ?? workerPid)),
    }).catch((error_: unknown) => error_)) as ExternalToolError
    expect(error).toBeInstanceOf(ExternalToolError)
    expect(error.message).toContain('timed out after 1000 ms')
    const deadline = Date.now() + 5000
    while (isAlive(workerPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(isAlive(workerPid)).toBe(false)
  })

  it('returns the output of a group that exits by itself', async () => {
    const result = await runProcess(node, ['-e', 'console.log("done")'], {processGroup: true})
    expect(result.stdout).toBe('done')
  })
})

describe('command lines and tails', () => {
  it('quotes only the arguments that need it', () => {
    expect(formatCommandLine('cmake', ['--build', '/tmp/a b', '-j', '2', "it's"])).toBe(
      `cmake --build '/tmp/a b' -j 2 'it'\\''s'`,
    )
    expect(formatCommandLine('x', [''])).toBe(`x ''`)
  })

  it('keeps the last lines without trailing blank ones', () => {
    expect(lastLines('a\nb\nc\n\n', 2)).toBe('b\nc')
    expect(lastLines('', 5)).toBe('')
  })
})

describe('DEBUG convention', () => {
  it('matches namespaces, wildcards and exclusions', () => {
    expect(isDebugEnabled('invagent:process', 'invagent:*')).toBe(true)
    expect(isDebugEnabled('invagent:process', '*')).toBe(true)
    expect(isDebugEnabled('invagent:process', 'other,invagent:process')).toBe(true)
    expect(isDebugEnabled('invagent:process', 'invagent:*,-invagent:process')).toBe(false)
    expect(isDebugEnabled('invagent:process', 'invagent:llama')).toBe(false)
    expect(isDebugEnabled('invagent:process', '')).toBe(false)
  })
})
