import {copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {join, resolve} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ServeOutput} from '../../src/cli/output-schemas.js'
import {ExternalToolError, UserError} from '../../src/errors.js'
import {findLlamaBinary} from '../../src/llama/locate.js'
import {startLlamaServer, type LlamaServerEvent} from '../../src/llama/serve.js'
import {temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/*
 * The real llama-server (built by `invagent llama build`, which CI runs first) serving the tiny
 * random-weight GGUF: readiness, a crash at startup, restart after a kill, a crash loop, and
 * stopping without leaving a process behind.
 */

const BIN = resolve(import.meta.dirname, '../../bin/run.js')

let llamaServer: string | undefined
try {
  llamaServer = (await findLlamaBinary('llama-server')).path
} catch (error) {
  // The only reason to skip: no binary anywhere. Say so loudly.
  console.warn(
    `SKIPPING llama-server integration tests: ${(error as Error).message}\n  → run \`node bin/run.js llama build\` first.`,
  )
}

function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  // A zombie (exited, not yet reaped) counts as gone.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** llama-server processes whose parent is `parentPid` (this test process, by default). */
function llamaServerChildren(parentPid = process.pid): number[] {
  const children: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const match = /^\d+ \((.*)\) (\S) (\d+)/.exec(stat)
      if (match && match[1].startsWith('llama-server') && match[2] !== 'Z' && Number(match[3]) === parentPid)
        children.push(Number(entry))
    } catch {
      // It exited while we looked.
    }
  }
  return children
}

async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve_) => setTimeout(resolve_, 100))
  }
}

async function health(url: string): Promise<number> {
  const response = await fetch(`${url}/health`, {signal: AbortSignal.timeout(5000)})
  await response.body?.cancel()
  return response.status
}

describe.skipIf(!llamaServer)('llama-server, supervised', () => {
  let directory: string
  let model: string

  beforeAll(() => {
    directory = temporaryDirectory('invagent-llama-server-')
    model = writeTinyGguf(join(directory, 'tiny.gguf'), {seed: 3}).path
  })

  afterAll(() => {
    expect(llamaServerChildren(), 'no llama-server may outlive the tests').toEqual([])
    rmSync(directory, {recursive: true, force: true})
  })

  it('starts on a free loopback port, answers /health and the OpenAI API, and stops without leaving a process', async () => {
    const events: LlamaServerEvent['type'][] = []
    const server = await startLlamaServer({
      model,
      port: 0,
      ctxSize: 512,
      threads: 2,
      parallel: 1,
      onEvent: (event) => events.push(event.type),
    })
    const pid = server.pid
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(server.port).toBeGreaterThan(1024)
      expect(server.args).toEqual(
        expect.arrayContaining([
          '--model',
          model,
          '--host',
          '127.0.0.1',
          '--ctx-size',
          '512',
          '--threads',
          '2',
          '--parallel',
          '1',
        ]),
      )
      expect(await health(server.url)).toBe(200)
      const models = (await (await fetch(`${server.url}/v1/models`)).json()) as {data: Array<{id: string}>}
      expect(models.data.map((entry) => entry.id)).toContain('tiny')
      expect(isAlive(pid)).toBe(true)
    } finally {
      await server.stop()
    }
    expect(isAlive(pid)).toBe(false)
    await expect(server.closed).resolves.toBeUndefined()
    expect(events).toEqual(['server-starting', 'server-ready', 'server-stopped'])
    await expect(fetch(`${server.url}/health`)).rejects.toThrow()
  })

  // What this llama.cpp does with the two ways of constraining output (DESIGN §6 reported
  // response_format failing on an older build): both work here; if an upgrade breaks one, this says which.
  it('constrains /v1/chat/completions with a plain grammar and with response_format json_schema', async () => {
    await using server = await startLlamaServer({model, port: 0, ctxSize: 512})
    const complete = async (extra: Record<string, unknown>) => {
      const response = await fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({
          messages: [
            {role: 'system', content: 'You audit inventory.'},
            {role: 'user', content: 'Part P-000001 is at -5.'},
          ],
          max_tokens: 64,
          temperature: 0,
          seed: 1,
          ...extra,
        }),
      })
      const body = (await response.json()) as {choices?: Array<{message: {content: string}}>; error?: {message: string}}
      return {status: response.status, content: body.choices?.[0].message.content, error: body.error?.message}
    }
    const schema = {
      type: 'object',
      properties: {tool: {enum: ['get_part', 'escalate']}},
      required: ['tool'],
      additionalProperties: false,
    }
    const viaGrammar = await complete({grammar: 'root ::= "{\\"tool\\": \\"" ("get_part" | "escalate") "\\"}"'})
    expect(viaGrammar.status, viaGrammar.error).toBe(200)
    expect(JSON.parse(viaGrammar.content!)).toEqual({tool: expect.stringMatching(/^(get_part|escalate)$/)})
    const viaSchema = await complete({
      response_format: {type: 'json_schema', json_schema: {name: 'step', strict: true, schema}},
    })
    expect(viaSchema.status, viaSchema.error).toBe(200)
    expect(JSON.parse(viaSchema.content!)).toEqual({tool: expect.stringMatching(/^(get_part|escalate)$/)})
    const badGrammar = await complete({grammar: 'root ::= undefined-rule'})
    expect(badGrammar).toMatchObject({status: 400, error: expect.stringContaining('Failed to initialize samplers')})
  })

  it('refuses a model path that does not exist before starting anything', async () => {
    const started = Date.now()
    const error = (await startLlamaServer({model: join(directory, 'nope.gguf'), port: 0}).catch(
      (error_: unknown) => error_,
    )) as UserError
    expect(error).toBeInstanceOf(UserError)
    expect(error.message).toContain(join(directory, 'nope.gguf'))
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('fails fast with the tail of stderr when llama-server cannot load the model', async () => {
    const broken = join(directory, 'broken.gguf')
    writeFileSync(broken, 'GGUF but not really a model file\n'.repeat(100))
    const started = Date.now()
    const error = (await startLlamaServer({model: broken, port: 0, ctxSize: 512}).catch(
      (error_: unknown) => error_,
    )) as ExternalToolError
    expect(error).toBeInstanceOf(ExternalToolError)
    expect(error.message).toMatch(/llama-server exited with code \d+ before it was ready/)
    expect(error.stderrTail).not.toBe('')
    expect(error.message).toContain(error.stderrTail.split('\n').at(-1)!)
    expect(error.stderrTail.toLowerCase()).toMatch(/gguf|model/)
    expect(error.command).toContain(broken)
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(llamaServerChildren()).toEqual([])
  })

  it('refuses a port that is already taken', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve_) => blocker.listen(0, '127.0.0.1', resolve_))
    const {port} = blocker.address() as {port: number}
    try {
      await expect(startLlamaServer({model, port})).rejects.toThrow(`port ${port} on 127.0.0.1 is already in use`)
    } finally {
      blocker.close()
    }
  })

  it('restarts llama-server when it is killed, on the same port', async () => {
    const events: LlamaServerEvent[] = []
    await using server = await startLlamaServer({
      model,
      port: 0,
      ctxSize: 512,
      restart: {initialDelayMs: 100},
      onEvent: (event) => events.push(event),
    })
    const firstPid = server.pid!
    process.kill(firstPid, 'SIGKILL')
    await waitFor(() => server.restarts === 1, 30_000, 'the restart')
    expect(server.pid).not.toBe(firstPid)
    expect(isAlive(firstPid)).toBe(false)
    expect(await health(server.url)).toBe(200)
    expect(events.map((event) => event.type)).toEqual([
      'server-starting',
      'server-ready',
      'server-exited',
      'server-restarting',
      'server-starting',
      'server-ready',
    ])
    expect(events.find((event) => event.type === 'server-exited')).toMatchObject({signal: 'SIGKILL'})
  })

  it('gives up on a crash loop with the stderr tail, after the bounded attempts', async () => {
    const doomed = join(directory, 'doomed.gguf')
    copyFileSync(model, doomed)
    const events: LlamaServerEvent[] = []
    const server = await startLlamaServer({
      model: doomed,
      port: 0,
      ctxSize: 512,
      restart: {maxAttempts: 2, initialDelayMs: 50},
      onEvent: (event) => events.push(event),
    })
    // From now on every restart fails at once: the model file is gone.
    rmSync(doomed)
    process.kill(server.pid!, 'SIGKILL')
    const error = (await server.closed.catch((error_: unknown) => error_)) as ExternalToolError
    expect(error).toBeInstanceOf(ExternalToolError)
    expect(error.message).toContain('failed 3 times in a row; giving up')
    expect(error.stderrTail).not.toBe('')
    const restarting = events.filter((event) => event.type === 'server-restarting')
    expect(restarting.map((event) => (event as {delayMs: number}).delayMs)).toEqual([50, 100])
    expect(events.at(-1)?.type).toBe('server-gave-up')
    expect(llamaServerChildren()).toEqual([])
    await server.stop()
  })

  it('stops when its AbortSignal fires', async () => {
    const controller = new AbortController()
    const server = await startLlamaServer({model, port: 0, ctxSize: 512, signal: controller.signal})
    const pid = server.pid
    controller.abort()
    await server.closed
    await waitFor(() => !isAlive(pid), 10_000, 'llama-server to exit')
  })

  // Regression: on the first signal execa's exit hook (signal-exit) used to end the CLI before it stopped llama-server.
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '`invagent serve --json` prints JSON Lines, stops llama-server and exits 0 on %s',
    async (signal) => {
      const cli = execa(process.execPath, [BIN, 'serve', '--model', model, '--port', '0', '--ctx', '512', '--json'], {
        reject: false,
        stdin: 'ignore',
        env: {INVAGENT_LLAMA_SERVER: llamaServer},
      })
      let stdout = ''
      cli.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
      const ready = await waitFor(
        () => (stdout.includes('\n') ? ServeOutput.parse(JSON.parse(stdout.split('\n')[0])) : undefined),
        60_000,
        'the ready line',
      )
      if (ready.event !== 'ready') throw new Error(`expected a ready line, got ${JSON.stringify(ready)}`)
      expect(ready.host).toBe('127.0.0.1')
      expect(ready.llamaServerSource).toBe('env')
      expect(await health(ready.url)).toBe(200)
      expect(llamaServerChildren(cli.pid)).toEqual([ready.pid])
      cli.kill(signal)
      const result = await cli
      expect(result.exitCode).toBe(0)
      const lines = result.stdout
        .trim()
        .split('\n')
        .map((line) => ServeOutput.parse(JSON.parse(line)))
      expect(lines.at(-1)).toEqual({event: 'stopped', url: ready.url, restarts: 0, signal})
      expect(isAlive(ready.pid!)).toBe(false)
    },
  )
})
