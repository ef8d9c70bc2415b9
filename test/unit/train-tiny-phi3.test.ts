import {execFileSync, spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {Tokenizer} from '@huggingface/tokenizers'
import {beforeAll, describe, expect, it} from 'vitest'

import {ModelTemplate} from '../../src/dataset/token-count.js'
import {bundledVocabReference} from '../../src/llama/vocab.js'
import {temporaryDirectory} from '../helpers/cli.js'

/*
 * scripts/tiny_phi3.py writes the Phi-3 tokenizer (tokenizer.model, tokenizer.json,
 * tokenizer_config.json) from the vocabulary llama.cpp ships. Here, without torch or a download, its
 * files are held to llama.cpp's own reference tokenizations of that vocabulary (every one must match),
 * and to llama.cpp tokenizing chats from the GGUF. The GPU smoke test (scripts/gpu-smoke.sh) then
 * trains a tiny model on exactly these files.
 */

const BUILDER = resolve(import.meta.dirname, '../../scripts/tiny_phi3.py')
const SPM_CHECK = resolve(import.meta.dirname, '../fixtures/train/check_tokenizer_model.py')

interface Reference {
  text: string
  ids: number[]
}

function readReference(inp: string, out: string): Reference[] {
  const texts = readFileSync(inp, 'utf8').split('\n__ggml_vocab_test__\n')
  const ids = readFileSync(out, 'utf8').split('\n')
  // Both files end with an empty entry after their last separator / newline.
  if (texts.at(-1) === '' && ids.at(-1) === '') {
    texts.pop()
    ids.pop()
  }
  expect(texts.length).toBe(ids.length)
  return texts.map((text, index) => ({text, ids: ids[index].split(' ').filter(Boolean).map(Number)}))
}

/** A Python that has sentencepiece (Debian's python3-sentencepiece serves /usr/bin/python3), if any. */
function pythonWithSentencepiece(): string | undefined {
  return ['python3', '/usr/bin/python3'].find(
    (python) => spawnSync(python, ['-c', 'import sentencepiece'], {stdio: 'ignore'}).status === 0,
  )
}

const PROBE_CHATS = [
  '<|system|>\nYou audit an inventory.<|end|>\n<|user|>\nFinding negative_on_hand on P-000123: on_hand -4.<|end|>\n<|assistant|>\n' +
    '{"thought": "Check the part.", "tool": "get_part", "args": {"part_id": "P-000123"}}<|end|>\n<|endoftext|>',
  '<|user|>\n  two spaces, a tab\tand ünïcödé 🤖<|end|>\n<|assistant|>\n{"tool": "resolve"}<|end|>\n<|user|>\nok<|end|>\n<|assistant|>\n',
]

describe("the tiny Phi-3 tokenizer written from llama.cpp's vocabulary", () => {
  let dir: string
  let reference: Reference[]
  let vocab: string

  beforeAll(async () => {
    const files = await bundledVocabReference('phi-3')
    vocab = files.gguf
    reference = readReference(files.inp, files.out)
    dir = join(temporaryDirectory('invagent-tiny-phi3-'), 'tiny-phi3')
    execFileSync('python3', ['-B', BUILDER, dir, '--vocab', vocab, '--layers', '2'], {encoding: 'utf8'})
  })

  function hfTokenizer(): Tokenizer {
    return new Tokenizer(
      JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')),
    )
  }

  it("tokenizer.json gives llama.cpp's reference ids for every reference text", () => {
    expect(reference.length).toBeGreaterThan(30)
    const tokenizer = hfTokenizer()
    const mismatches = reference.filter(
      ({text, ids}) => JSON.stringify(tokenizer.encode(text, {add_special_tokens: false}).ids) !== JSON.stringify(ids),
    )
    expect(mismatches.map(({text}) => text)).toEqual([])
  })

  it('tokenizer.json and llama.cpp (GGUF named Phi3) give the same ids for chats with special tokens', async () => {
    const tokenizer = hfTokenizer()
    const llama = await ModelTemplate.load(vocab)
    try {
      for (const chat of PROBE_CHATS)
        expect(tokenizer.encode(chat, {add_special_tokens: false}).ids).toEqual(llama.tokenizeText(chat))
      // The whitespace after a chat marker is eaten on both sides (Phi-3's rstrip rule): "\nYou" is one "▁You".
      const ids = tokenizer.encode('<|system|>\nYou', {add_special_tokens: false}).ids
      expect(ids).toEqual([32006, 887])
    } finally {
      await llama.dispose()
    }
  })

  it('tokenizer_config.json names the special tokens and the chat template; config.json is a small Phi3ForCausalLM', () => {
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>
    expect(config).toMatchObject({
      bos_token: '<s>',
      eos_token: '<|endoftext|>',
      unk_token: '<unk>',
      tokenizer_class: 'LlamaTokenizer',
      add_bos_token: true,
    })
    expect(config.chat_template).toContain('<|system|>')
    const decoder = config.added_tokens_decoder as Record<string, {content: string; special: boolean}>
    expect(decoder['32007']).toMatchObject({content: '<|end|>', special: true})
    const model = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>
    expect(model).toMatchObject({
      architectures: ['Phi3ForCausalLM'],
      model_type: 'phi3',
      hidden_size: 256,
      num_hidden_layers: 2,
      vocab_size: 32064,
    })
  })

  const python = pythonWithSentencepiece()
  it.skipIf(python === undefined)(
    "tokenizer.model (read by sentencepiece, as llama.cpp's converter reads it) gives the reference ids and the GGUF's pieces",
    () => {
      const output = execFileSync(python!, ['-B', SPM_CHECK, join(dir, 'tokenizer.model'), vocab], {
        encoding: 'utf8',
        input: JSON.stringify(reference),
      })
      expect(output.trim().split('\n').at(-1)).toBe('ok')
    },
  )
})
