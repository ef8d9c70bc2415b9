import {existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {execa} from 'execa'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {LlamaBuildOutput} from '../../src/cli/output-schemas.js'
import {acquireBuildLock} from '../../src/llama/build-lock.js'
import {parseCmakeProgress, parseNinjaProgress} from '../../src/llama/build.js'
import {llamaCacheRoot, llamaSourceDir, llamaSourceInfo} from '../../src/llama/cache.js'
import {findCachedLlamaBinary} from '../../src/llama/locate.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'

/*
 * `invagent llama build`: the cache hit CI relies on, the refusal without build tools, Ctrl+C in
 * the middle of a build leaving nothing half-written, and the lock between concurrent builds.
 * The full 8-minute compile itself runs in CI's `.ci/run` (`node bin/run.js llama build`).
 */

const BIN = resolve(import.meta.dirname, '../../bin/run.js')
const cached = await findCachedLlamaBinary('llama-server')
const bindingCached = existsSync(
  join(llamaCacheRoot(), `${(await llamaSourceInfo()).key}-node-binding`, 'binding-info.json'),
)

let scratch: string

beforeEach(() => {
  scratch = temporaryDirectory('invagent-llama-build-')
})

afterEach(() => {
  rmSync(scratch, {recursive: true, force: true})
})

describe.skipIf(!cached)('llama build, built', () => {
  it('is a cache hit the second time: instant, built false, the source kept for conversion', async () => {
    const result = await runCli(['llama', 'build', '--no-binding', '--json'], scratch)
    expect(result.exitCode, result.stderr).toBe(0)
    const output = LlamaBuildOutput.parse(result.json)
    const info = await llamaSourceInfo()
    expect(output).toMatchObject({built: false, key: info.key, version: info.tag})
    expect(output.seconds).toBeLessThan(10)
    expect(output.key).toContain(info.bundleSha256.slice(0, 12))
    expect(output.binaries.llamaServer).toBe(cached)
    expect(existsSync(output.binaries.llamaQuantize)).toBe(true)
    expect(output.llamaServerVersion).toMatch(/\S/)
    expect(await llamaSourceDir()).toBe(output.sourceDir)
    expect(existsSync(join(output.sourceDir, 'convert_hf_to_gguf.py'))).toBe(true)
    expect(existsSync(join(output.sourceDir, 'gguf-py'))).toBe(true)
  })

  // Compiling the binding takes minutes: CI's `llama build` does it before the tests; here only the cached one is checked.
  it.skipIf(!bindingCached)(
    "puts node-llama-cpp's binding compiled from the same source where node-llama-cpp loads it first",
    async () => {
      const result = await runCli(['llama', 'build', '--json'], scratch)
      expect(result.exitCode, result.stderr).toBe(0)
      const binding = LlamaBuildOutput.parse(result.json).nodeBinding!
      expect(binding.built).toBe(false)
      for (const folder of [binding.cached, binding.installed]) {
        expect(existsSync(join(folder, 'Release', 'llama-addon.node')), folder).toBe(true)
        expect(existsSync(join(folder, 'buildDone.status')), folder).toBe(true)
      }
      // A script file, not `node -e`: node-llama-cpp forks its own file to test a binding.
      const probe = join(scratch, 'probe.mjs')
      writeFileSync(
        probe,
        `const {getLlama, LlamaLogLevel} = await import(${JSON.stringify(import.meta.resolve('node-llama-cpp'))})\nconsole.log((await getLlama({gpu: false, build: 'never', logLevel: LlamaLogLevel.error})).buildType)\n`,
      )
      const loaded = await execa(process.execPath, [probe], {reject: false})
      expect(loaded.stdout.trim(), loaded.stderr).toBe('localBuild')
    },
  )
})

describe('llama build, from scratch', () => {
  it('refuses to start without cmake and a C++ compiler, and says how to install them', async () => {
    const bin = join(scratch, 'bin')
    mkdirSync(bin)
    symlinkSync('/usr/bin/git', join(bin, 'git'))
    const result = await execa(process.execPath, [BIN, 'llama', 'build'], {
      reject: false,
      stdin: 'ignore',
      env: {PATH: bin, INVAGENT_CACHE: join(scratch, 'cache')},
      extendEnv: false,
    })
    expect(result.exitCode).toBe(3)
    expect(result.stderr).toContain('building llama.cpp needs cmake, c++')
    expect(result.stderr).toContain('apt-get install git cmake g++')
  })

  it('stops its compilers on Ctrl+C, writes nothing to the final folder, and keeps the staging folder to resume', async () => {
    const cache = join(scratch, 'cache')
    const build = execa(process.execPath, [BIN, 'llama', 'build', '--json'], {
      reject: false,
      stdin: 'ignore',
      env: {INVAGENT_CACHE: cache},
    })
    let stderr = ''
    let exited = false
    build.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    void build.finally(() => (exited = true))
    const deadline = Date.now() + 120_000
    while (!stderr.includes('Compile') && Date.now() < deadline && !exited)
      await new Promise((resolve_) => setTimeout(resolve_, 100))
    expect(stderr).toContain('✔ Configure (cmake)')
    const {key} = await llamaSourceInfo()
    build.kill('SIGINT')
    const result = await build
    expect(result.exitCode).toBe(130)
    // Only the staging folder is left: no lock, no half-written <key> folder, no temporary one.
    expect(readdirSync(join(cache, 'llama.cpp'))).toEqual([`.staging-${key}`])
    const staging = join(cache, 'llama.cpp', `.staging-${key}`)
    expect(existsSync(join(staging, 'source-unpacked'))).toBe(true)
    expect(existsSync(join(staging, 'cmake-build', 'CMakeCache.txt'))).toBe(true)
    // The compilers went with cmake: none of them is still writing into the staging folder.
    const compilers = await execa('pgrep', ['-f', staging], {reject: false})
    expect(compilers.stdout.trim()).toBe('')

    // Running it again resumes: the source is not unpacked again and cmake continues its tree.
    const again = execa(process.execPath, [BIN, 'llama', 'build', '--json'], {
      reject: false,
      stdin: 'ignore',
      env: {INVAGENT_CACHE: cache},
    })
    let againStderr = ''
    let againExited = false
    again.stderr!.on('data', (chunk: Buffer) => (againStderr += chunk.toString()))
    void again.finally(() => (againExited = true))
    while (!againStderr.includes('Compile') && Date.now() < deadline && !againExited)
      await new Promise((resolve_) => setTimeout(resolve_, 100))
    again.kill('SIGINT')
    expect((await again).exitCode).toBe(130)
    expect(againStderr).toContain('already unpacked: resuming the previous build')
  }, 240_000)
})

describe('the build lock', () => {
  it('is exclusive: a second holder waits until the first releases it', async () => {
    const path = join(scratch, 'key.lock')
    const first = await acquireBuildLock(path)
    let waited = false
    const second = acquireBuildLock(path, {pollMs: 20, onWait: (owner) => (waited = owner.pid === process.pid)})
    await new Promise((resolve_) => setTimeout(resolve_, 100))
    expect(waited).toBe(true)
    first.release()
    const lock = await second
    expect(existsSync(path)).toBe(true)
    lock.release()
    expect(existsSync(path)).toBe(false)
  })

  it('takes over a lock whose owner no longer exists', async () => {
    const path = join(scratch, 'key.lock')
    const dead = await execa(process.execPath, ['-e', 'console.log(process.pid)'])
    writeFileSync(
      path,
      JSON.stringify({
        pid: Number(dead.stdout),
        host: (await import('node:os')).hostname(),
        startedAt: new Date(0).toISOString(),
      }),
    )
    const lock = await acquireBuildLock(path, {pollMs: 20, timeoutMs: 2000})
    lock.release()
  })

  it('stops waiting when cancelled', async () => {
    const path = join(scratch, 'key.lock')
    const first = await acquireBuildLock(path)
    const controller = new AbortController()
    const waiting = acquireBuildLock(path, {pollMs: 20, signal: controller.signal})
    controller.abort(new Error('cancelled'))
    await expect(waiting).rejects.toThrow('cancelled')
    first.release()
  })
})

describe('cmake progress', () => {
  it('reads the percentage and what is being built', () => {
    expect(parseCmakeProgress('[ 42%] Building CXX object src/CMakeFiles/llama.dir/llama-model.cpp.o')).toEqual({
      percent: 42,
      what: 'compiling llama-model.cpp',
    })
    expect(parseCmakeProgress('[100%] Linking CXX executable ../../bin/llama-server')).toEqual({
      percent: 100,
      what: 'linking llama-server',
    })
    expect(parseCmakeProgress('[  5%] Built target ggml-base')).toEqual({percent: 5, what: 'Built target ggml-base'})
    expect(parseCmakeProgress('-- Configuring done')).toBeUndefined()
  })
})

describe('node-llama-cpp compile progress', () => {
  it("reads ninja's [done/total] counter as a percentage", () => {
    expect(
      parseNinjaProgress('[42/153] Building CXX object llama.cpp/src/CMakeFiles/llama.dir/llama-model.cpp.o'),
    ).toBe(27)
    expect(parseNinjaProgress('[153/153] Linking CXX shared library Release/llama-addon.node')).toBe(100)
    expect(parseNinjaProgress('-- Found OpenMP: TRUE')).toBeUndefined()
  })
})
