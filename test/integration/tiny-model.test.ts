import {availableParallelism} from 'node:os'
import {join} from 'node:path'

import {
  JinjaTemplateChatWrapper,
  LlamaChatSession,
  getLlama,
  readGgufFileInfo,
  resolveChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf, type TinyGgufInfo} from '../helpers/tiny-gguf.js'

/*
 * The tiny GGUF written by the test helper is a real model: llama.cpp (through node-llama-cpp)
 * loads it, tokenizes any text, detects its Phi-3 chat template, and generates with and without
 * a JSON-schema grammar. Every other model test in the project builds on this.
 *
 * Most generations here use one thread. A token of this 110k-parameter model is microseconds of
 * arithmetic, so a second thread adds nothing but a barrier per graph node, and when the other
 * core is busy (vitest runs two test files at once on 2 cores) every barrier waits for a time
 * slice: 32 tokens took 30 ms with 1 thread and 0.2–7 s with 2 on this machine. One short
 * generation checks the engine's configuration (threads = available cores) still works.
 */

// Worst case of this schema under node-llama-cpp's JSON grammar is 27 bytes plus the 4 newlines
// that end a JSON grammar: one token per byte, so it always completes within 32 tokens.
const STEP_SCHEMA = {type: 'object', properties: {tool: {enum: ['get_part', 'escalate']}}} as const

describe('a tiny random-weight GGUF', () => {
  let info: TinyGgufInfo
  let llama: Llama
  let model: LlamaModel
  let context: LlamaContext

  beforeAll(async () => {
    info = writeTinyGguf(join(temporaryDirectory(), 'tiny.gguf'), {seed: 7})
    llama = await getLlama({gpu: false})
    model = await llama.loadModel({modelPath: info.path})
    context = await model.createContext({threads: 1, contextSize: 512})
  })

  afterAll(async () => {
    await context?.dispose()
    await model?.dispose()
    await llama?.dispose()
  })

  it('reads back through readGgufFileInfo with every key llama.cpp needs', async () => {
    const file = await readGgufFileInfo(info.path)
    expect(file.version).toBe(3)
    expect(file.tensorCount).toBe(info.tensorCount)
    expect(file.metadata.general.architecture).toBe('llama')
    expect(file.architectureMetadata).toMatchObject({
      context_length: 4096,
      embedding_length: 64,
      block_count: 2,
      feed_forward_length: 128,
      attention: {head_count: 4, head_count_kv: 2},
      rope: {dimension_count: 16},
    })
    expect(file.metadata.tokenizer.ggml.tokens).toHaveLength(info.vocabularySize)
    expect(file.metadata.tokenizer.chat_template).toContain('<|assistant|>')
    const parameters = file.tensorInfo!.reduce(
      (sum, tensor) => sum + tensor.dimensions.reduce<number>((product, dimension) => product * Number(dimension), 1),
      0,
    )
    expect(parameters).toBe(info.parameterCount)
    expect(model.fileInfo.metadata.general.architecture).toBe('llama')
  })

  it('tokenizes arbitrary text and detokenizes it back unchanged', () => {
    const texts = [
      'Part P-000123 is at -5 EA.',
      '  leading and  double  spaces ',
      'tabs\tand\nnewlines\r\n',
      'ünïcödé, 日本語, emoji 👋🏽',
      '<|user|> markers in text stay text </s>',
      '{"tool": "get_part"}',
    ]
    for (const text of texts) {
      const tokens = model.tokenize(text)
      expect(tokens.length).toBeGreaterThan(0)
      expect(model.detokenize(tokens)).toBe(text)
      // Plain text never turns into control tokens.
      expect(tokens).not.toContain(info.tokens.user)
    }
    expect(model.tokenize('<|user|>', true)).toEqual([info.tokens.user])
    expect(model.tokenize('<|end|>', true)).toEqual([info.tokens.end])
    expect(model.tokens.bos).toBe(info.tokens.bos)
    expect(model.tokens.eos).toBe(info.tokens.eos)
    expect(model.tokens.eot).toBe(info.tokens.eot)
  })

  it('has its Phi-3 chat template detected: node-llama-cpp renders it with a Jinja wrapper', () => {
    const wrapper = resolveChatWrapper(model)
    expect(wrapper).toBeInstanceOf(JinjaTemplateChatWrapper)
    const {contextText} = wrapper!.generateContextState({
      chatHistory: [
        {type: 'system', text: 'You audit inventory.'},
        {type: 'user', text: 'Why is P-1 negative?'},
        {type: 'model', response: []},
      ],
    })
    expect(model.detokenize(contextText.tokenize(model.tokenizer), true)).toBe(
      '<|system|>\nYou audit inventory.<|end|>\n<|user|>\nWhy is P-1 negative?<|end|>\n<|assistant|>\n',
    )
  })

  it('generates with threads = available cores, as the embedded engine configures a context', async () => {
    const wide = await model.createContext({threads: availableParallelism(), contextSize: 512})
    try {
      // A byte-level vocabulary spends a token per byte: keep node-llama-cpp's long default system prompt out.
      const session = new LlamaChatSession({contextSequence: wide.getSequence(), systemPrompt: 'Audit.'})
      const generated: Token[] = []
      await session.prompt('Status?', {maxTokens: 8, temperature: 0, onToken: (tokens) => generated.push(...tokens)})
      expect(generated.length).toBeLessThanOrEqual(8)
      expect(wide.currentThreads).toBeGreaterThanOrEqual(1)
    } finally {
      await wide.dispose()
    }
  })

  it('generates at most 32 tokens unconstrained', async () => {
    const session = new LlamaChatSession({contextSequence: context.getSequence(), systemPrompt: 'You audit inventory.'})
    const generated: Token[] = []
    const answer = await session.prompt('Part P-000123 shows -5 on hand. What next?', {
      maxTokens: 32,
      temperature: 0,
      onToken: (tokens) => generated.push(...tokens),
    })
    expect(generated.length).toBeLessThanOrEqual(32)
    expect(answer).toBe(model.detokenize(generated))
    session.dispose({disposeSequence: true})
  })

  it('generates JSON that matches the schema under a JSON-schema grammar, whatever the seed', async () => {
    const grammar = await llama.createGrammarForJsonSchema(STEP_SCHEMA)
    const session = new LlamaChatSession({contextSequence: context.getSequence()})
    for (const options of [{temperature: 0}, {temperature: 1.5, seed: 1}, {temperature: 1.5, seed: 2}]) {
      session.resetChatHistory()
      const generated: Token[] = []
      const answer = await session.prompt('Reply with the next step as JSON.', {
        ...options,
        maxTokens: 32,
        grammar,
        onToken: (tokens) => generated.push(...tokens),
      })
      expect(generated.length).toBeLessThanOrEqual(32)
      const parsed = JSON.parse(answer)
      expect(Object.keys(parsed)).toEqual(['tool'])
      expect(['get_part', 'escalate']).toContain(parsed.tool)
      expect(grammar.parse(answer)).toEqual(parsed)
    }
    session.dispose({disposeSequence: true})
  })
})
