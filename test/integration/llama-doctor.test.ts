import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {DoctorOutput} from '../../src/cli/output-schemas.js'
import {findCachedLlamaBinary} from '../../src/llama/locate.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/* `invagent doctor` on this machine, and on one where nothing is built yet. */

const BIN = resolve(import.meta.dirname, '../../bin/run.js')
const cached = await findCachedLlamaBinary('llama-server')

let directory: string

beforeAll(() => {
  directory = temporaryDirectory('invagent-doctor-')
  mkdirSync(join(directory, 'models'))
  writeTinyGguf(join(directory, 'models', 'tiny.gguf'))
  writeFileSync(join(directory, 'models', 'truncated.gguf'), 'GGUF')
})

afterAll(() => {
  rmSync(directory, {recursive: true, force: true})
})

describe('invagent doctor', () => {
  it.skipIf(!cached)('finds the built binaries, the binding and the models, and exits 0', async () => {
    const result = await runCli(['doctor', '--json'], directory)
    expect(result.exitCode, result.stderr).toBe(0)
    const report = DoctorOutput.parse(result.json)
    const status = Object.fromEntries(report.checks.map((check) => [check.id, check.status]))
    expect(status).toMatchObject({node: 'ok', cpu: 'ok', 'llama-server': 'ok', 'llama-quantize': 'ok'})
    expect(report.ok).toBe(true)
    expect(report.binaries.llamaServer?.version).toMatch(/\S/)
    expect(report.nodeLlamaCpp.bindingLoads, report.nodeLlamaCpp.error).toBe(true)
    const tiny = report.models.find((model) => model.path.endsWith('tiny.gguf'))
    expect(tiny).toMatchObject({architecture: 'llama', name: 'invagent-tiny'})
    const truncated = report.models.find((model) => model.path.endsWith('truncated.gguf'))
    expect(truncated?.error).toMatch(/not a readable GGUF/)
    expect(status.models).toBe('warn')
  })

  it('reports llama-server as missing with the next step, exit 3, and still prints the report', async () => {
    const nodeOnly = dirname(process.execPath)
    const result = await execa(
      process.execPath,
      [BIN, 'doctor', '--json', '--model', join(directory, 'models', 'tiny.gguf')],
      {
        cwd: directory,
        reject: false,
        stdin: 'ignore',
        env: {PATH: `${nodeOnly}:/usr/bin:/bin`, INVAGENT_CACHE: join(directory, 'empty-cache')},
        extendEnv: false,
      },
    )
    expect(result.exitCode).toBe(3)
    const report = DoctorOutput.parse(JSON.parse(result.stdout))
    expect(report.ok).toBe(false)
    const server = report.checks.find((check) => check.id === 'llama-server')
    expect(server).toMatchObject({status: 'missing'})
    expect(server?.nextStep).toContain('invagent llama build')
    expect(report.binaries.llamaServer).toBeNull()
    expect(report.cacheDir).toBe(join(directory, 'empty-cache'))
  })

  it('says what is missing in words without --json', async () => {
    const result = await execa(process.execPath, [BIN, 'doctor'], {
      cwd: directory,
      reject: false,
      stdin: 'ignore',
      env: {PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, INVAGENT_CACHE: join(directory, 'empty-cache')},
      extendEnv: false,
    })
    expect(result.exitCode).toBe(3)
    expect(result.stdout).toMatch(/MISSING\s+llama-server/)
    expect(result.stdout).toContain('→ Run `invagent llama build`')
    expect(result.stdout).toMatch(/ok\s+node/)
  })
})
