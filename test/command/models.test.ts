import {readFileSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {
  ModelsAddOutput,
  ModelsInspectOutput,
  ModelsListOutput,
  ModelsVerifyOutput,
} from '../../src/cli/output-schemas.js'
import {runCli, sha256OfFile, temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

// The registry's folder comes from the current directory: a developer's own setting must not leak in.
beforeAll(() => {
  delete process.env.INVAGENT_MODELS_DIR
})

/** oclif wraps error messages at the terminal width and prefixes each line with " ›": undo both. */
function unwrapped(stderr: string): string {
  return stderr.replace(/\s*\n\s*›\s+/g, ' ').replace(/^\s*›\s+/, '')
}

/** A working folder with models/tiny.gguf (a real, loadable GGUF written by the test helper). */
function workspace(): {cwd: string; gguf: string} {
  const cwd = temporaryDirectory()
  const gguf = join(cwd, 'models', 'tiny.gguf')
  writeTinyGguf(gguf, {seed: 21})
  return {cwd, gguf}
}

describe('invagent models', () => {
  it('add registers a GGUF, list shows it, inspect reads it by name and by path, verify passes', async () => {
    const {cwd, gguf} = workspace()
    const before = await runCli(['models', 'list', '--json'], cwd)
    expect(before.exitCode).toBe(0)
    expect(ModelsListOutput.parse(before.json).unregistered.map((file) => file.file)).toEqual(['tiny.gguf'])

    const add = await runCli(
      [
        'models',
        'add',
        'models/tiny.gguf',
        '--name',
        'tiny',
        '--base-model',
        'microsoft/Phi-3-mini-4k-instruct',
        '--json',
      ],
      cwd,
    )
    expect(add.exitCode, add.stderr).toBe(0)
    const added = ModelsAddOutput.parse(add.json)
    expect(added.manifest).toMatchObject({
      name: 'tiny',
      file: 'tiny.gguf',
      sha256: sha256OfFile(gguf),
      architecture: 'llama',
      quantization: 'F32',
      parameterCount: 110_912,
      baseModel: 'microsoft/Phi-3-mini-4k-instruct',
    })
    expect(added.manifest.createdBy).toBe(
      'invagent models add models/tiny.gguf --name tiny --base-model microsoft/Phi-3-mini-4k-instruct --json',
    )
    expect(JSON.parse(readFileSync(join(cwd, 'models', 'tiny.json'), 'utf8'))).toEqual(added.manifest)

    const list = ModelsListOutput.parse((await runCli(['models', 'list', '--json'], cwd)).json)
    expect(list.models.map((model) => [model.name, model.status])).toEqual([['tiny', 'ok']])
    expect(list.unregistered).toEqual([])

    const byName = ModelsInspectOutput.parse((await runCli(['models', 'inspect', 'tiny', '--json'], cwd)).json)
    expect(byName).toMatchObject({
      registryName: 'tiny',
      architecture: 'llama',
      quantization: 'F32',
      parameterCount: 110_912,
      contextLength: 4096,
      vocabularySize: 288,
      tensorCount: 21,
      sha256: added.manifest.sha256,
    })
    expect(byName.chatTemplate.present).toBe(true)
    const byPath = ModelsInspectOutput.parse(
      (await runCli(['models', 'inspect', './models/tiny.gguf', '--no-hash', '--json'], cwd)).json,
    )
    expect(byPath).toMatchObject({registryName: 'tiny', sha256: null})

    const verify = await runCli(['models', 'verify', '--json'], cwd)
    expect(verify.exitCode).toBe(0)
    expect(ModelsVerifyOutput.parse(verify.json)).toMatchObject({
      ok: true,
      models: [{name: 'tiny', ok: true, problems: []}],
    })
  })

  it('prints tables for people', async () => {
    const {cwd} = workspace()
    await runCli(['models', 'add', 'models/tiny.gguf'], cwd)
    writeTinyGguf(join(cwd, 'models', 'stray.gguf'))
    const list = await runCli(['models', 'list'], cwd)
    expect(list.stdout).toMatch(/^name\s+quant\s+arch\s+params\s+size\s+file\s+file status/)
    expect(list.stdout).toMatch(/tiny\s+F32\s+llama\s+110\.9K\s+442\.5 KiB\s+tiny\.gguf\s+ok/)
    expect(list.stdout).toContain('GGUF files without a manifest')
    expect(list.stdout).toContain('stray.gguf')
    const inspect = await runCli(['models', 'inspect', 'tiny'], cwd)
    expect(inspect.stdout).toMatch(/parameters\s+110\.9K \(110,912\)/)
    expect(inspect.stdout).toMatch(/chat template\s+yes: \{% for message in messages %\}/)
    const verify = await runCli(['models', 'verify'], cwd)
    expect(verify.stdout).toContain('ok      tiny')
    expect(verify.stdout).toContain('note    stray.gguf has no manifest')
    expect(verify.stdout).toContain('1 model(s) verified.')
  })

  it('verify exits 1 and says what is wrong with each model', async () => {
    const {cwd, gguf} = workspace()
    await runCli(['models', 'add', 'models/tiny.gguf'], cwd)
    writeTinyGguf(join(cwd, 'models', 'cut.gguf'))
    await runCli(['models', 'add', 'models/cut.gguf'], cwd)
    truncateSync(join(cwd, 'models', 'cut.gguf'), 4096)
    writeTinyGguf(gguf, {seed: 22})
    writeFileSync(join(cwd, 'models', 'bad.json'), '{\n  "schemaVersion": 1\n  "name": "bad"\n}\n')
    const result = await runCli(['models', 'verify', '--json'], cwd)
    expect(result.exitCode).toBe(1)
    const verification = ModelsVerifyOutput.parse(result.json)
    expect(verification.ok).toBe(false)
    expect(
      Object.fromEntries(
        verification.models.map((model) => [model.name, model.problems.map((problem) => problem.check)]),
      ),
    ).toEqual({bad: ['manifest'], cut: ['size'], tiny: ['sha256']})
    const human = await runCli(['models', 'verify'], cwd)
    expect(human.exitCode).toBe(1)
    expect(human.stdout).toContain(`FAILED  bad: manifest: ${join(cwd, 'models', 'bad.json')}:3:3: invalid JSON`)
    expect(human.stdout).toMatch(/FAILED {2}cut: size: .*cut\.gguf has 4096 bytes, the manifest says \d+/)
    expect(human.stdout).toContain('FAILED  tiny: sha256: sha256 is ')
    expect(human.stdout).toContain('3 of 3 model(s) failed verification.')
  })

  it('an unknown name exits 3 with a did-you-mean; a file that is not a GGUF exits 2', async () => {
    const {cwd} = workspace()
    await runCli(['models', 'add', 'models/tiny.gguf', '--name', 'phi3-q4km'], cwd)
    const unknown = await runCli(['models', 'inspect', 'phi3-q4'], cwd)
    expect(unknown.exitCode).toBe(3)
    expect(unwrapped(unknown.stderr)).toContain(
      `Error: unknown model "phi3-q4" in ${join(cwd, 'models')} — did you mean "phi3-q4km"?`,
    )
    writeFileSync(join(cwd, 'notes.gguf'), 'just text')
    const foreign = await runCli(['models', 'inspect', 'notes.gguf'], cwd)
    expect(foreign.exitCode).toBe(2)
    expect(unwrapped(foreign.stderr)).toContain(
      'notes.gguf is not a GGUF file: expected the magic "GGUF", it starts with "just".',
    )
    const taken = await runCli(['models', 'add', 'notes.gguf', '--name', 'phi3-q4km'], cwd)
    expect(taken.exitCode).toBe(2)
  })

  it('uses INVAGENT_MODELS_DIR, and --models-dir over it', async () => {
    const {cwd} = workspace()
    const elsewhere = temporaryDirectory()
    writeTinyGguf(join(elsewhere, 'far.gguf'))
    process.env.INVAGENT_MODELS_DIR = elsewhere
    try {
      const added = ModelsAddOutput.parse(
        (await runCli(['models', 'add', join(elsewhere, 'far.gguf'), '--json'], cwd)).json,
      )
      expect(added.manifestPath).toBe(join(elsewhere, 'far.json'))
      expect(added.manifest.file).toBe('far.gguf')
      const list = ModelsListOutput.parse((await runCli(['models', 'list', '--json'], cwd)).json)
      expect(list.directory).toBe(elsewhere)
      expect(list.models.map((model) => model.name)).toEqual(['far'])
      const flagged = ModelsListOutput.parse(
        (await runCli(['models', 'list', '--models-dir', 'models', '--json'], cwd)).json,
      )
      expect(flagged.directory).toBe(join(cwd, 'models'))
      expect(flagged.unregistered.map((file) => file.file)).toEqual(['tiny.gguf'])
    } finally {
      delete process.env.INVAGENT_MODELS_DIR
    }
  })
})
