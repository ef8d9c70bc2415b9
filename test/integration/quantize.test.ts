import {existsSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {QuantizeOutput} from '../../src/cli/output-schemas.js'
import {EmbeddedEngine} from '../../src/engines/embedded-engine.js'
import {findLlamaBinary} from '../../src/llama/locate.js'
import {checkQuantizedOutput} from '../../src/llama/quantize.js'
import {inspectGguf} from '../../src/models/inspect-gguf.js'
import {readManifest} from '../../src/models/manifest.js'
import {runCli, sha256OfFile, temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/*
 * `invagent quantize` with the real llama-quantize (built by `invagent llama build`, which CI runs
 * first) on the tiny test GGUF whose matrices are multiples of 256 wide, so K-quants apply: Q8_0
 * and Q4_K_M, each checked, registered, then loaded and run by the embedded engine.
 */

/** oclif wraps error messages at the terminal width and prefixes each line with " ›": undo both. */
function unwrapped(stderr: string): string {
  return stderr.replace(/\s*\n\s*›\s+/g, ' ').replace(/^\s*›\s+/, '')
}

let skipReason: string | undefined
try {
  await findLlamaBinary('llama-quantize')
} catch (error) {
  skipReason = `${(error as Error).message} → run \`node bin/run.js llama build\` first`
  console.warn(`SKIPPING the quantize integration tests: ${skipReason}`)
}

describe.skipIf(skipReason !== undefined)('invagent quantize (real llama-quantize, tiny GGUF)', () => {
  let cwd: string
  let source: string

  beforeAll(() => {
    delete process.env.INVAGENT_MODELS_DIR
    cwd = temporaryDirectory()
    source = join(cwd, 'models', 'tiny-f16.gguf')
    writeTinyGguf(source, {preset: 'quantizable', tensorType: 'f16', seed: 9})
  })

  afterAll(() => {
    // Nothing half-written is left behind.
    expect(readdirSync(join(cwd, 'models')).filter((name) => name.includes('partial'))).toEqual([])
  })

  it.each([
    ['Q8_0', 'tiny-q8_0'],
    ['Q4_K_M', 'tiny-q4_k_m'],
  ])(
    'quantizes to %s, checks and registers it, and the embedded engine runs it',
    {timeout: 120_000},
    async (type, name) => {
      const registered = await runCli(
        ['models', 'add', 'models/tiny-f16.gguf', '--name', 'tiny-f16', '--base-model', 'org/tiny-base', '--json'],
        cwd,
      )
      expect(registered.exitCode, registered.stderr).toBe(0)
      const result = await runCli(['quantize', 'tiny-f16', '--type', type, '--json'], cwd)
      expect(result.exitCode, result.stderr).toBe(0)
      const output = QuantizeOutput.parse(result.json)
      expect(output.quantize).toMatchObject({
        type,
        inputQuantization: 'F16',
        tensorCount: 21,
        output: join(cwd, 'models', `${name}.gguf`),
      })
      expect(output.quantize.outputSize).toBeLessThan(output.quantize.inputSize)
      expect(output.quantize.bitsPerWeight).toBeGreaterThanOrEqual(output.quantize.expectedBitsPerWeight.min)
      expect(output.quantize.bitsPerWeight).toBeLessThanOrEqual(output.quantize.expectedBitsPerWeight.max)
      const header = await inspectGguf(output.quantize.output)
      expect(header.quantization).toBe(type)
      expect(header.sha256).toBe(output.quantize.sha256)
      // The manifest names its parent and keeps the parent's provenance.
      const manifest = readManifest(join(cwd, 'models', `${name}.json`))
      expect(manifest).toMatchObject({
        name,
        quantization: type,
        parent: 'tiny-f16',
        baseModel: 'org/tiny-base',
        sha256: sha256OfFile(output.quantize.output),
      })
      expect(manifest.createdBy).toBe(`invagent quantize tiny-f16 --type ${type} --json`)

      const engine = await EmbeddedEngine.load({
        modelPath: output.quantize.output,
        threads: 1,
        contextSize: 2048,
        maxTokens: 24,
        seed: 1,
      })
      try {
        const completion = await engine.complete([{role: 'user', content: 'Say something.'}])
        expect(completion.usage.promptTokens).toBeGreaterThan(0)
        expect(completion.usage.completionTokens).toBeGreaterThan(13)
        // Decoded under the step grammar, whatever the random weights make of it.
        expect(completion.text.startsWith('{"thought": "')).toBe(true)
      } finally {
        await engine.close()
      }
    },
  )

  it(
    'refuses to quantize a quantized file again unless told to, and refuses to overwrite',
    {timeout: 60_000},
    async () => {
      const first = await runCli(
        ['quantize', 'models/tiny-f16.gguf', '--type', 'Q8_0', '--out', 'models/again-q8.gguf', '--name', 'again-q8'],
        cwd,
      )
      expect(first.exitCode, first.stderr).toBe(0)
      expect(first.stdout).toContain('registered as "again-q8"')
      const requantize = await runCli(['quantize', 'models/again-q8.gguf', '--type', 'Q4_K_M'], cwd)
      expect(requantize.exitCode).toBe(2)
      expect(unwrapped(requantize.stderr)).toContain('is already quantized (Q8_0)')
      expect(existsSync(join(cwd, 'models', 'again-q4_k_m.gguf'))).toBe(false)
      const overwrite = await runCli(
        ['quantize', 'models/tiny-f16.gguf', '--type', 'Q8_0', '--out', 'models/again-q8.gguf'],
        cwd,
      )
      expect(overwrite.exitCode).toBe(2)
      expect(unwrapped(overwrite.stderr)).toContain('already exists')
      const allowed = await runCli(
        ['quantize', 'models/again-q8.gguf', '--type', 'Q4_K_M', '--allow-requantize', '--json'],
        cwd,
      )
      expect(allowed.exitCode, allowed.stderr).toBe(0)
      expect(QuantizeOutput.parse(allowed.json).registered.manifest.parent).toBe('again-q8')
    },
  )

  it('rejects an output whose size does not fit the type', async () => {
    const input = await inspectGguf(source, {hash: false})
    // The F16 file itself is no Q4_K_M: wrong file type and far too many bits per weight.
    expect(() => checkQuantizedOutput(input, input, 'Q4_K_M')).toThrow(
      /file type is F16, not Q4_K_M.*bits per weight, where Q4_K_M gives/s,
    )
  })
})
