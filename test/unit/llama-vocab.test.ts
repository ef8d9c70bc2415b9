import {describe, expect, it} from 'vitest'

import {resolveTokenizerModel, vocabForBaseModel} from '../../src/llama/vocab.js'

describe('bundled vocabularies', () => {
  it('knows the Phi-3 family by its Hugging Face id, and nothing it cannot vouch for', () => {
    expect(vocabForBaseModel('microsoft/Phi-3-mini-4k-instruct')).toBe('phi-3')
    expect(vocabForBaseModel('microsoft/Phi-3-mini-128k-instruct')).toBe('phi-3')
    expect(vocabForBaseModel('microsoft/Phi-3.5-mini-instruct')).toBe('phi-3')
    // Phi-3-small and medium use other tokenizers; other families are not guessed.
    expect(vocabForBaseModel('microsoft/Phi-3-small-8k-instruct')).toBeUndefined()
    expect(vocabForBaseModel('meta-llama/Llama-3.1-8B-Instruct')).toBeUndefined()
  })

  it('prefers a registered model or a file to a bundled vocabulary of the same name', async () => {
    const registered = await resolveTokenizerModel('phi-3', {resolve: () => ({path: '/models/phi-3.gguf'})})
    expect(registered).toEqual({path: '/models/phi-3.gguf', bundled: false})
    // Any other failure (a registered model whose file is missing) is reported as it is.
    const missing = Object.assign(new Error('model "phi-3": its file is missing'), {code: 'MODEL_FILE_MISSING'})
    const resolve = (): never => {
      throw missing
    }
    await expect(resolveTokenizerModel('phi-3', {resolve})).rejects.toBe(missing)
  })
})
