import {copyFileSync, mkdirSync, readFileSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {ConfigError, InvagentError, UserError} from '../../src/errors.js'
import {sha256File} from '../../src/models/hash-file.js'
import {inspectGguf} from '../../src/models/inspect-gguf.js'
import {modelsDirectory} from '../../src/models/models-directory.js'
import {listModels, modelNameFromFile, registerModel, resolveModel} from '../../src/models/registry.js'
import {verifyModels} from '../../src/models/verify-models.js'
import {sha256OfFile, temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

/** A models folder with one tiny GGUF in it (not yet registered). */
function fixture(): {root: string; directory: string; gguf: string} {
  const root = temporaryDirectory()
  const directory = join(root, 'models')
  const gguf = join(directory, 'tiny.gguf')
  writeTinyGguf(gguf, {seed: 11})
  return {root, directory, gguf}
}

async function rejection(promise: Promise<unknown>): Promise<InvagentError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(InvagentError)
  return error as InvagentError
}

function thrown(fn: () => unknown): InvagentError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(InvagentError)
    return error as InvagentError
  }
  throw new Error('expected an error')
}

describe('models folder', () => {
  it('is ./models unless INVAGENT_MODELS_DIR says otherwise, always absolute', () => {
    expect(modelsDirectory({}, '/repo')).toBe('/repo/models')
    expect(modelsDirectory({INVAGENT_MODELS_DIR: '/data/models'}, '/repo')).toBe('/data/models')
    expect(modelsDirectory({INVAGENT_MODELS_DIR: 'shared/m'}, '/repo')).toBe('/repo/shared/m')
    expect(modelsDirectory({INVAGENT_MODELS_DIR: ''}, '/repo')).toBe('/repo/models')
  })
})

describe('inspectGguf', () => {
  it('reports architecture, parameters, quantization, context, vocabulary, chat template, size and sha256', async () => {
    const {gguf} = fixture()
    const progress: number[] = []
    const inspection = await inspectGguf(gguf, {onProgress: (read) => progress.push(read)})
    expect(inspection).toMatchObject({
      architecture: 'llama',
      modelName: 'invagent-tiny',
      quantization: 'F32',
      tensorTypes: {F32: 21},
      tensorCount: 21,
      contextLength: 4096,
      embeddingLength: 64,
      blockCount: 2,
      vocabularySize: 288,
      tokenizer: 'llama',
      ggufVersion: 3,
      sha256: sha256OfFile(gguf),
    })
    expect(inspection.chatTemplate.present).toBe(true)
    expect(inspection.chatTemplate.firstLine).toMatch(/^\{% for message in messages %\}/)
    expect(progress.at(-1)).toBe(inspection.fileSize)
    expect((await inspectGguf(gguf, {hash: false})).sha256).toBeNull()
  })

  it('names the file type of an F16 model, and a model without a chat template says so', async () => {
    const path = join(temporaryDirectory(), 'half.gguf')
    writeTinyGguf(path, {tensorType: 'f16', chatTemplate: null})
    const inspection = await inspectGguf(path, {hash: false})
    expect(inspection.quantization).toBe('F16')
    expect(inspection.chatTemplate).toEqual({present: false, firstLine: null})
  })

  it('refuses a missing, empty, foreign, truncated or cut-off file with a UserError that says which', async () => {
    const directory = temporaryDirectory()
    const gguf = join(directory, 'tiny.gguf')
    writeTinyGguf(gguf)
    expect((await rejection(inspectGguf(join(directory, 'nope.gguf')))).message).toContain('no such file')
    expect((await rejection(inspectGguf(directory))).message).toContain('is not a file')
    writeFileSync(join(directory, 'empty.gguf'), '')
    expect((await rejection(inspectGguf(join(directory, 'empty.gguf')))).message).toContain('the file is empty')
    writeFileSync(join(directory, 'zip.gguf'), 'PK\u0003\u0004 not a model')
    const foreign = await rejection(inspectGguf(join(directory, 'zip.gguf')))
    expect(foreign).toBeInstanceOf(UserError)
    expect(foreign.message).toContain('is not a GGUF file')
    for (const [bytes, expected] of [
      [20, 'corrupt or truncated GGUF header'],
      [3000, 'its header ends at byte'],
      [200_000, 'its tensors end at byte'],
    ] as const) {
      const cut = join(directory, `cut-${bytes}.gguf`)
      copyFileSync(gguf, cut)
      truncateSync(cut, bytes)
      expect((await rejection(inspectGguf(cut, {hash: false}))).message, `${bytes} bytes`).toContain(expected)
    }
  })
})

describe('registerModel', () => {
  it('writes models/<name>.json with the file relative to the folder, and the header and hash of the file', async () => {
    const {directory, gguf} = fixture()
    const registered = await registerModel(gguf, {
      directory,
      createdBy: 'invagent models add models/tiny.gguf',
      baseModel: 'microsoft/Phi-3-mini-4k-instruct',
      datasetSha256: 'c'.repeat(64),
      now: new Date('2026-02-01T00:00:00Z'),
    })
    expect(registered.manifestPath).toBe(join(directory, 'tiny.json'))
    expect(JSON.parse(readFileSync(registered.manifestPath, 'utf8'))).toEqual({
      schemaVersion: 1,
      name: 'tiny',
      file: 'tiny.gguf',
      sha256: await sha256File(gguf),
      size: registered.manifest.size,
      architecture: 'llama',
      quantization: 'F32',
      parameterCount: 110_912,
      baseModel: 'microsoft/Phi-3-mini-4k-instruct',
      datasetSha256: 'c'.repeat(64),
      parent: null,
      createdBy: 'invagent models add models/tiny.gguf',
      createdAt: '2026-02-01T00:00:00.000Z',
    })
  })

  it('records a file outside the folder by absolute path, and creates the folder', async () => {
    const root = temporaryDirectory()
    const gguf = join(root, 'elsewhere', 'x.gguf')
    writeTinyGguf(gguf)
    const {manifest} = await registerModel(gguf, {directory: join(root, 'new-models'), name: 'x', createdBy: 'test'})
    expect(manifest.file).toBe(gguf)
    expect(resolveModel('x', {directory: join(root, 'new-models')}).path).toBe(gguf)
  })

  it('derives names from file names', () => {
    expect(modelNameFromFile('/m/Phi-3-mini-4k-instruct-q4.gguf')).toBe('Phi-3-mini-4k-instruct-q4')
    expect(modelNameFromFile('/m/my model (v2).GGUF')).toBe('my-model-v2-')
    expect(modelNameFromFile('/m/.gguf')).toBe('model')
  })

  it('refreshes the manifest of the same file, and refuses to give its name to another file without overwrite', async () => {
    const {directory, gguf} = fixture()
    await registerModel(gguf, {directory, createdBy: 'first'})
    expect((await registerModel(gguf, {directory, createdBy: 'second'})).manifest.createdBy).toBe('second')
    const other = join(directory, 'other.gguf')
    writeTinyGguf(other, {seed: 99})
    const error = await rejection(registerModel(other, {directory, name: 'tiny', createdBy: 'third'}))
    expect(error).toBeInstanceOf(UserError)
    expect(error.code).toBe('MODEL_EXISTS')
    expect(error.suggestions.join(' ')).toContain('--force')
    expect(
      (await registerModel(other, {directory, name: 'tiny', createdBy: 'third', overwrite: true})).manifest.file,
    ).toBe('other.gguf')
  })

  it('checks the name, the dataset hash and the parent before reading the file', async () => {
    const {directory, gguf} = fixture()
    await registerModel(gguf, {directory, createdBy: 'test', name: 'phi3-f16'})
    expect((await rejection(registerModel(gguf, {directory, createdBy: 'test', name: '../escape'}))).code).toBe(
      'MODEL_NAME_INVALID',
    )
    expect(
      (await rejection(registerModel(gguf, {directory, createdBy: 'test', name: 'q', datasetSha256: 'xyz'}))).code,
    ).toBe('DATASET_SHA_INVALID')
    const parent = await rejection(registerModel(gguf, {directory, createdBy: 'test', name: 'q', parent: 'phi3-f15'}))
    expect(parent).toBeInstanceOf(ConfigError)
    expect(parent.message).toContain('did you mean "phi3-f16"?')
    expect(
      (await registerModel(gguf, {directory, createdBy: 'test', name: 'q', parent: 'phi3-f16'})).manifest.parent,
    ).toBe('phi3-f16')
  })
})

describe('resolveModel', () => {
  it('resolves a registry name to its file, and a path to itself with its manifest when registered', async () => {
    const {root, directory, gguf} = fixture()
    await registerModel(gguf, {directory, createdBy: 'test'})
    expect(resolveModel('tiny', {directory})).toMatchObject({
      path: gguf,
      name: 'tiny',
      manifestPath: join(directory, 'tiny.json'),
    })
    expect(resolveModel('models/tiny.gguf', {directory, cwd: root})).toMatchObject({path: gguf, name: 'tiny'})
    const loose = join(root, 'loose.gguf')
    writeTinyGguf(loose)
    expect(resolveModel('./loose.gguf', {directory, cwd: root})).toEqual({
      path: loose,
      name: null,
      manifest: null,
      manifestPath: null,
    })
  })

  it('answers an unknown name with a ConfigError that suggests the closest registered name', async () => {
    const {directory, gguf} = fixture()
    await registerModel(gguf, {directory, createdBy: 'test', name: 'phi3-q4km'})
    const error = thrown(() => resolveModel('phi3-q4', {directory}))
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.exitCode).toBe(3)
    expect(error.message).toBe(`unknown model "phi3-q4" in ${directory} — did you mean "phi3-q4km"?`)
    expect(error.suggestions).toContain('invagent models list')
    expect(thrown(() => resolveModel('zzz', {directory: join(directory, 'empty')})).message).toContain(
      'no model is registered there',
    )
    expect(thrown(() => resolveModel('./missing.gguf', {directory})).code).toBe('MODEL_FILE_MISSING')
  })

  it('refuses a registered model whose file is gone or has another size', async () => {
    const {directory, gguf} = fixture()
    await registerModel(gguf, {directory, createdBy: 'test'})
    truncateSync(gguf, 1000)
    expect(thrown(() => resolveModel('tiny', {directory})).code).toBe('MODEL_SIZE_MISMATCH')
    writeFileSync(
      join(directory, 'tiny.json'),
      readFileSync(join(directory, 'tiny.json'), 'utf8').replace('"tiny.gguf"', '"gone.gguf"'),
    )
    expect(thrown(() => resolveModel('tiny', {directory})).message).toContain('gone.gguf is missing')
  })
})

describe('listModels and verifyModels', () => {
  it('list manifests, flag unregistered GGUFs and invalid manifests; verify passes a sound registry', async () => {
    const {directory, gguf} = fixture()
    await registerModel(gguf, {directory, createdBy: 'test'})
    writeTinyGguf(join(directory, 'stray.gguf'))
    writeFileSync(join(directory, 'broken.json'), '{"schemaVersion": 1,')
    const list = listModels(directory)
    expect(list.models.map((model) => [model.name, model.status])).toEqual([['tiny', 'ok']])
    expect(list.unregistered.map((file) => file.file)).toEqual(['stray.gguf'])
    expect(list.invalid).toHaveLength(1)
    expect(list.invalid[0].error).toContain('broken.json:1:21: invalid JSON')
    const result = await verifyModels({directory, name: 'tiny'})
    expect(result.ok).toBe(true)
    expect(result.models[0].problems).toEqual([])
    expect(listModels(join(directory, 'nowhere'))).toEqual({
      directory: join(directory, 'nowhere'),
      models: [],
      unregistered: [],
      invalid: [],
    })
  })

  it('verify names each mismatch: manifest, missing file, size, sha256, header metadata', async () => {
    const {directory, gguf} = fixture()
    for (const name of ['same', 'resized', 'replaced', 'relabelled', 'deleted']) {
      copyFileSync(gguf, join(directory, `${name}.gguf`))
      await registerModel(join(directory, `${name}.gguf`), {directory, createdBy: 'test'})
    }
    truncateSync(join(directory, 'resized.gguf'), 1000)
    writeTinyGguf(join(directory, 'replaced.gguf'), {seed: 12})
    const relabelled = join(directory, 'relabelled.json')
    writeFileSync(relabelled, readFileSync(relabelled, 'utf8').replace('"F32"', '"Q4_K_M"'))
    writeFileSync(join(directory, 'deleted.gguf'), '')
    mkdirSync(join(directory, 'sub'))
    writeFileSync(
      join(directory, 'deleted.json'),
      readFileSync(join(directory, 'deleted.json'), 'utf8').replace('deleted.gguf', 'sub/deleted.gguf'),
    )
    writeFileSync(join(directory, 'garbled.json'), '[]')
    const result = await verifyModels({directory})
    expect(result.ok).toBe(false)
    const checks = Object.fromEntries(
      result.models.map((model) => [model.name, model.problems.map((problem) => problem.check)]),
    )
    expect(checks).toEqual({
      deleted: ['file'],
      garbled: ['manifest'],
      relabelled: ['metadata'],
      replaced: ['sha256'],
      resized: ['size'],
      same: [],
    })
    expect(result.models.find((model) => model.name === 'relabelled')!.problems[0].message).toBe(
      'quantization is F32, the manifest says Q4_K_M',
    )
    expect(result.unregistered.map((file) => file.file)).toEqual(['deleted.gguf', 'tiny.gguf'])
  })

  it('verify of an unknown name is a ConfigError with a did-you-mean', async () => {
    const {directory, gguf} = fixture()
    await registerModel(gguf, {directory, createdBy: 'test'})
    const error = await rejection(verifyModels({directory, name: 'tin'}))
    expect(error.message).toContain('did you mean "tiny"?')
  })
})
