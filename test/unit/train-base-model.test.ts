import {execFileSync} from 'node:child_process'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {bundledVocab} from '../../src/llama/vocab.js'
import {baseModelFolderProblems, checkLocalBaseModel, isModelPath} from '../../src/train/base-model.js'
import {temporaryDirectory} from '../helpers/cli.js'

/* Any local causal-LM folder with its own chat template is a base model; what is not is refused early. */

describe('a base model folder', () => {
  it('tells folders from Hugging Face ids', () => {
    expect(isModelPath('microsoft/Phi-3-mini-4k-instruct')).toBe(false)
    expect(isModelPath('/models/Qwen2.5-3B-Instruct')).toBe(true)
    expect(isModelPath('./phi3')).toBe(true)
    expect(isModelPath('~/models/llama')).toBe(true)
    expect(isModelPath('models/meta/llama')).toBe(true)
  })

  it('accepts the tiny Phi-3 folder and a ChatML model with chat_template.jinja; refuses one without a template', async () => {
    const work = temporaryDirectory('invagent-base-model-')
    const phi3 = join(work, 'phi3')
    execFileSync('python3', [
      '-B',
      resolve(import.meta.dirname, '../../scripts/tiny_phi3.py'),
      phi3,
      '--vocab',
      await bundledVocab('phi-3'),
      '--layers',
      '1',
    ])
    expect(baseModelFolderProblems(phi3)).toEqual([])

    const qwen = join(work, 'qwen')
    mkdirSync(qwen)
    writeFileSync(join(qwen, 'config.json'), JSON.stringify({architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2'}))
    writeFileSync(join(qwen, 'tokenizer.json'), '{}')
    writeFileSync(join(qwen, 'tokenizer_config.json'), JSON.stringify({tokenizer_class: 'Qwen2Tokenizer'}))
    expect(baseModelFolderProblems(qwen)).toEqual([
      'no chat template (tokenizer_config.json chat_template, or chat_template.jinja): invagent trains chat models only',
    ])
    writeFileSync(
      join(qwen, 'chat_template.jinja'),
      '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}',
    )
    expect(() => checkLocalBaseModel(qwen)).not.toThrow()

    const encoder = join(work, 'bert')
    mkdirSync(encoder)
    writeFileSync(join(encoder, 'config.json'), JSON.stringify({architectures: ['BertModel']}))
    expect(() => checkLocalBaseModel(encoder)).toThrow(/names no causal language model/)
    expect(() => checkLocalBaseModel(join(work, 'missing'))).toThrow(/does not exist/)
    expect(JSON.parse(readFileSync(join(phi3, 'config.json'), 'utf8')).num_hidden_layers).toBe(1)
  })
})
