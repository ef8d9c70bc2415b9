import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {ConfigError} from '../../src/errors.js'
import {
  currentCommandLine,
  jsonPointer,
  parseManifest,
  writeManifest,
  type ModelManifest,
} from '../../src/models/manifest.js'
import {temporaryDirectory} from '../helpers/cli.js'

const VALID: ModelManifest = {
  schemaVersion: 1,
  name: 'phi3-q4',
  file: 'phi3-q4.gguf',
  sha256: 'a'.repeat(64),
  size: 2_393_232_672,
  architecture: 'phi3',
  quantization: 'Q4_K_M',
  parameterCount: 3_821_079_552,
  baseModel: 'microsoft/Phi-3-mini-4k-instruct',
  datasetSha256: 'b'.repeat(64),
  parent: 'phi3-f16',
  createdBy: 'invagent quantize phi3-f16 --type Q4_K_M',
  createdAt: '2026-01-31T12:00:00.000Z',
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('model manifests', () => {
  it('round-trips through writeManifest and parseManifest', () => {
    const path = join(temporaryDirectory(), 'phi3-q4.json')
    writeManifest(path, VALID)
    const text = readFileSync(path, 'utf8')
    expect(text.endsWith('}\n')).toBe(true)
    expect(Object.keys(JSON.parse(text))).toEqual(Object.keys(VALID))
    expect(parseManifest(text, path)).toEqual(VALID)
  })

  it('reads missing provenance fields as null', () => {
    const {baseModel: _b, datasetSha256: _d, parent: _p, ...minimal} = VALID
    expect(parseManifest(JSON.stringify(minimal), 'models/phi3-q4.json')).toMatchObject({
      baseModel: null,
      datasetSha256: null,
      parent: null,
    })
  })

  it('reports bad JSON as file:line:column', () => {
    const text = '{\n  "schemaVersion": 1,\n  "name": "phi3-q4"\n  "file": "x.gguf"\n}\n'
    const error = errorOf(() => parseManifest(text, 'models/phi3-q4.json'))
    expect(error.message).toMatch(/^models\/phi3-q4\.json:4:3: invalid JSON: /)
    expect(error.exitCode).toBe(3)
  })

  it('reports each schema violation with a JSON pointer, what was expected and what was found', () => {
    const text = JSON.stringify({
      ...VALID,
      sha256: 'ABC',
      size: -1,
      createdAt: 'yesterday',
      extra: true,
      parent: 'has space',
    })
    const {message} = errorOf(() => parseManifest(text, 'models/phi3-q4.json'))
    expect(message).toContain('models/phi3-q4.json#/sha256: expected a sha256: 64 lowercase hex digits, found "ABC"')
    expect(message).toContain('models/phi3-q4.json#/size: ')
    expect(message).toContain('found -1')
    expect(message).toContain('models/phi3-q4.json#/createdAt: ')
    expect(message).toContain('found "yesterday"')
    expect(message).toContain('models/phi3-q4.json#/parent: expected a model name')
    expect(message).toContain('models/phi3-q4.json#: unknown key(s) "extra"')
  })

  it('says which required field is missing, and what a wrongly typed one holds', () => {
    const {sha256: _s, ...withoutHash} = VALID
    expect(errorOf(() => parseManifest(JSON.stringify(withoutHash), 'models/phi3-q4.json')).message).toBe(
      'models/phi3-q4.json#/sha256: missing (expected string)',
    )
    expect(errorOf(() => parseManifest(JSON.stringify({...VALID, size: 'big'}), 'models/phi3-q4.json')).message).toBe(
      'models/phi3-q4.json#/size: expected number, found "big"',
    )
  })

  it('asks for an upgrade when the manifest format is newer', () => {
    const error = errorOf(() => parseManifest(JSON.stringify({...VALID, schemaVersion: 2}), 'models/phi3-q4.json'))
    expect(error.message).toContain('#/schemaVersion: manifest format 2 is newer')
    expect(error.suggestions).toEqual(['Upgrade invagent.'])
  })

  it('requires the name to match the file name, because the file name is how a name is found', () => {
    expect(errorOf(() => parseManifest(JSON.stringify(VALID), 'models/other.json')).message).toContain(
      '#/name: "phi3-q4" does not match',
    )
  })

  it('escapes JSON pointers and quotes command lines so they can be typed again', () => {
    expect(jsonPointer(['a/b', 'c~d', 0])).toBe('/a~1b/c~0d/0')
    expect(jsonPointer([])).toBe('')
    expect(currentCommandLine(['models', 'add', 'my model.gguf', "it's", '--name', 'x'])).toBe(
      `invagent models add 'my model.gguf' 'it'\\''s' --name x`,
    )
  })
})
