import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ServeOutput} from '../../src/cli/output-schemas.js'
import {findLlamaBinary} from '../../src/llama/locate.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'
import {assertJsonContract} from '../helpers/json-contract.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/*
 * `invagent serve` against the real llama-server (`node bin/run.js llama build`) and the tiny GGUF:
 * it refuses a host beyond loopback without a key, enforces the key when given one, and its
 * llama-server does not outlive it when it is killed with SIGKILL.
 */

const BIN = resolve(import.meta.dirname, '../../bin/run.js')

let llamaServer: string | undefined
try {
  llamaServer = (await findLlamaBinary('llama-server')).path
} catch (error) {
  console.warn(
    `SKIPPING the serve tests that need llama-server: ${(error as Error).message}\n  → run \`node ` +
      `bin/run.js llama build\` first.`,
  )
}

let directory: string
let model: string
let keyFile: string
const KEY = 'k3y-0123456789abcdef0123456789abcdef'

beforeAll(() => {
  directory = temporaryDirectory('invagent-serve-')
  model = writeTinyGguf(join(directory, 'tiny.gguf'), {seed: 5}).path
  keyFile = join(directory, 'api.key')
  writeFileSync(keyFile, `# the key of this test\n${KEY}\n`, {mode: 0o600})
})

afterAll(() => rmSync(directory, {recursive: true, force: true}))

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve_) => setTimeout(resolve_, 100))
  }
}

/** Starts `invagent serve --json …` and waits for its ready line. */
async function startServe(args: string[], port = 0) {
  const cli = execa(
    process.execPath,
    [BIN, 'serve', '--model', model, '--port', String(port), '--ctx', '512', '--json', ...args],
    {reject: false, stdin: 'ignore', env: {INVAGENT_LLAMA_SERVER: llamaServer!}},
  )
  let stdout = ''
  cli.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  const ready = await waitFor(
    () => (stdout.includes('\n') ? ServeOutput.parse(JSON.parse(stdout.split('\n')[0])) : undefined),
    60_000,
    'the ready line',
  )
  if (ready.event !== 'ready') throw new Error(`expected the ready line, got ${JSON.stringify(ready)}`)
  return {cli, ready, stdout: () => stdout}
}

describe('serve trusted the network', () => {
  it('refuses a host beyond loopback without a key file, before starting anything', async () => {
    const run = await runCli(['serve', '--model', model, '--host', '0.0.0.0', '--port', '0', '--json'], directory)
    expect(run.exitCode).toBe(2)
    expect(run.json.error.code).toBe('SERVE_NEEDS_KEY')
    expect(run.json.error.suggestions.join(' ')).toContain('--api-key-file')
  })

  it.each([
    ['an empty key file', ''],
    ['a short key', 'abc\n'],
    ['only comments', '# nothing\n'],
  ])('refuses %s', async (_what, content) => {
    const file = join(directory, `bad-${content.length}.key`)
    writeFileSync(file, content)
    const run = await runCli(
      ['serve', '--model', model, '--host', '0.0.0.0', '--port', '0', '--api-key-file', file, '--json'],
      directory,
    )
    expect(run.exitCode).toBe(2)
    expect(run.json.error.code).toBe('API_KEY_FILE')
  })

  it.skipIf(!llamaServer)(
    'serves beyond loopback with a key file, and every request needs the key',
    async () => {
      const {cli, ready, stdout} = await startServe(['--host', '0.0.0.0', '--api-key-file', keyFile])
      try {
        expect(ready.args).toContain('--api-key-file')
        expect(stdout()).not.toContain(KEY)
        const models = `http://127.0.0.1:${ready.port}/v1/models`
        const without = await fetch(models, {signal: AbortSignal.timeout(5000)})
        await without.body?.cancel()
        expect(without.status).toBe(401)
        const withKey = await fetch(models, {
          headers: {authorization: `Bearer ${KEY}`},
          signal: AbortSignal.timeout(5000),
        })
        await withKey.body?.cancel()
        expect(withKey.status).toBe(200)
      } finally {
        cli.kill('SIGTERM')
        await cli
      }
      assertJsonContract(['serve', '--json'], stdout())
    },
    120_000,
  )
})

describe('serve could outlive itself', () => {
  it.skipIf(!llamaServer)(
    'stops llama-server within seconds when `invagent serve` is killed with SIGKILL',
    async () => {
      const {cli, ready} = await startServe([])
      const pid = ready.pid!
      expect(isAlive(pid)).toBe(true)
      cli.kill('SIGKILL')
      await cli
      await waitFor(() => !isAlive(pid), 15_000, `llama-server ${pid} to stop after its supervisor was killed`)
      // The port is free again: a new server can take it.
      const again = await startServe([], ready.port)
      expect(again.ready.port).toBe(ready.port)
      again.cli.kill('SIGTERM')
      await again.cli
    },
    120_000,
  )
})
