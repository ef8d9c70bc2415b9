import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {ConfigError} from '../../src/errors.js'
import {defaultTrainConfig} from '../../src/train/config.js'
import {loadTrainConfig, validateTrainConfig} from '../../src/train/config-file.js'
import {temporaryDirectory} from '../helpers/cli.js'

function configFile(name: string, text: string): string {
  const path = join(temporaryDirectory(), name)
  writeFileSync(path, text)
  return path
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

describe('training config', () => {
  it('has the documented defaults', () => {
    const config = defaultTrainConfig()
    expect(config).toMatchObject({
      baseModel: 'microsoft/Phi-3-mini-4k-instruct',
      seed: 42,
      lora: {r: 16, alpha: 32, targetModules: 'all-linear'},
      training: {learningRate: 2e-4, epochs: 2, maxLength: 2048, warmupRatio: 0.03},
      quantization: {load4bit: true, quantType: 'nf4', doubleQuant: true, computeDtype: 'bfloat16'},
      merge: {dtype: 'bfloat16'},
      convert: {outType: 'f16'},
      quant: 'Q4_K_M',
    })
  })

  it('reads YAML and lets flags override the file', () => {
    const file = configFile('train.yaml', 'baseModel: org/base\nlora:\n  r: 8\ntraining:\n  epochs: 3\nquant: Q8_0\n')
    const config = loadTrainConfig({file, overrides: {quant: 'Q5_K_M'}})
    expect(config.baseModel).toBe('org/base')
    expect(config.lora).toMatchObject({r: 8, alpha: 32})
    expect(config.training.epochs).toBe(3)
    expect(config.quant).toBe('Q5_K_M')
  })

  it('reads JSON too', () => {
    const file = configFile('train.json', '{"lora": {"alpha": 16}, "training": {"warmupSteps": 5}}')
    const config = loadTrainConfig({file})
    expect(config.lora.alpha).toBe(16)
    expect(config.training).toMatchObject({warmupSteps: 5, warmupRatio: undefined})
  })

  it('reports a misspelt key with its position and a did-you-mean', () => {
    const file = configFile('train.yaml', 'lora:\n  r: 8\ntraining:\n  lerningRate: 0.001\n')
    const error = errorOf(() => loadTrainConfig({file}))
    expect(error.message).toContain(`${file}:4:3: training.lerningRate: unknown key — did you mean "learningRate"?`)
  })

  it('reports wrong types and ranges with what was found, every problem at once', () => {
    const file = configFile(
      'train.yaml',
      'lora:\n  r: 0\n  dropout: 1.5\ntraining:\n  maxLength: "long"\nquant: Q4_KM\n',
    )
    const message = errorOf(() => loadTrainConfig({file})).message
    expect(message).toMatch(new RegExp(`${file}:2:6: lora\\.r: .*>=\\s?1.*found 0`))
    expect(message).toMatch(new RegExp(`${file}:3:12: lora\\.dropout: .*found 1\\.5`))
    expect(message).toMatch(new RegExp(`${file}:5:14: training\\.maxLength: expected number, found "long"`))
    expect(message).toMatch(new RegExp(`${file}:6:8: quant: .*Q4_K_M.*found "Q4_KM" — did you mean "Q4_K_M"\\?`))
  })

  it('checks fields against each other', () => {
    const problems = (input: unknown) => errorOf(() => validateTrainConfig(input)).message
    expect(problems({training: {warmupRatio: 0.1, warmupSteps: 10}})).toContain(
      'training.warmupSteps: give either training.warmupSteps or training.warmupRatio, not both',
    )
    expect(problems({quantization: {load4bit: false, doubleQuant: true}})).toContain(
      'quantization.doubleQuant: doubleQuant applies to 4-bit loading only',
    )
    expect(problems({quantization: {load4bit: false, quantType: 'nf4'}})).toContain(
      'quantization.quantType: quantType applies to 4-bit loading only',
    )
    expect(problems({lora: {targetModules: ['q_proj', 'all-linear']}})).toContain(
      'lora.targetModules: "all-linear" stands alone',
    )
    expect(problems({merge: {dtype: 'float16'}, convert: {outType: 'bf16'}})).toContain(
      'convert.outType: a bf16 GGUF needs bfloat16 merged weights',
    )
    expect(problems({training: {loggingSteps: 50, saveSteps: 10}})).toContain(
      'training.saveSteps: a checkpoint every 10 steps but a loss line only every 50',
    )
    expect(problems({quant: 'F32'})).toContain('quant: F32 cannot be made from a f16 GGUF')
    // Without 4-bit loading the 4-bit options are not filled in.
    expect(validateTrainConfig({quantization: {load4bit: false}}).quantization).toEqual({
      load4bit: false,
      computeDtype: 'bfloat16',
    })
  })

  it('reports YAML syntax errors with their position', () => {
    const file = configFile('train.yaml', 'lora:\n  r: 8\n r: 9\n')
    expect(errorOf(() => loadTrainConfig({file})).message).toMatch(new RegExp(`${file}:3:\\d+: invalid YAML`))
  })

  it('refuses a file that is not a mapping, and a missing file', () => {
    expect(errorOf(() => loadTrainConfig({file: configFile('train.yaml', '- a\n- b\n')})).message).toContain(
      ':1:1: expected a mapping of settings',
    )
    expect(errorOf(() => loadTrainConfig({file: '/nonexistent/train.yaml'})).message).toContain('no such file')
  })
})
