import {copyFileSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {ModelTemplate} from '../../src/dataset/token-count.js'
import {bundledVocab} from '../../src/llama/vocab.js'
import {nameCheck, tokenIdsCheck} from '../../src/train/check-gguf.js'
import {temporaryDirectory} from '../helpers/cli.js'

/*
 * The checks a fetched GGUF gets before it is registered, on llama.cpp's own Phi-3 vocabulary: the
 * name llama.cpp reads Phi-3's whitespace rule off, and a probe chat's token ids in llama.cpp against
 * those training recorded.
 */

/** Phi-3's chat template's rendering of a two-turn chat (system, user, assistant, user, assistant). */
const PROBE =
  '<|system|>\nYou audit an inventory.  Use the tools.<|end|>\n<|user|>\nFinding negative_on_hand on P-000123:\n on_hand is -4 ünits.<|end|>\n' +
  '<|assistant|>\n{"thought": "Check the part.", "tool": "get_part", "args": {"part_id": "P-000123"}}<|end|>\n' +
  '<|user|>\n{"ok": true, "result": {"on_hand": -4}}<|end|>\n<|assistant|>\n{"tool": "escalate", "args": {"reason": "no cause"}}<|end|>\n<|endoftext|>'

/** A copy of a GGUF whose general.name is replaced by another of the same length (offsets stay valid). */
function renamed(path: string, from: string, to: string): string {
  expect(to.length).toBe(from.length)
  const bytes = readFileSync(path)
  const key = Buffer.from('general.name')
  const at = bytes.indexOf(key)
  // key, value type (uint32 8 = string), length (uint64), then the text
  const text = at + key.length + 4 + 8
  expect(bytes.subarray(text, text + from.length).toString()).toBe(from)
  bytes.write(to, text)
  const copy = join(temporaryDirectory('invagent-renamed-'), `${to}.gguf`)
  writeFileSync(copy, bytes)
  return copy
}

describe('checks of a trained GGUF', () => {
  it('refuses a Phi-3 GGUF whose name lacks phi3 (regression: the converter named it "Merged" after its folder)', () => {
    expect(
      nameCheck({architecture: 'phi3', tokenizerModel: 'llama', name: 'Phi-3 invagent-x'}, 'Phi-3 invagent-x').ok,
    ).toBe(true)
    const merged = nameCheck({architecture: 'phi3', tokenizerModel: 'llama', name: 'Merged'})
    expect(merged).toMatchObject({check: 'name', ok: false})
    expect(merged.detail).toContain('phi3 or phi-3')
    expect(nameCheck({architecture: 'phi3', tokenizerModel: 'llama', name: 'Phi3'}, 'Phi-3 invagent-x').ok).toBe(false)
    expect(nameCheck({architecture: 'qwen2', tokenizerModel: 'gpt2', name: 'Merged'}).ok).toBe(true)
    expect(nameCheck({architecture: 'phi3'}).ok).toBe(false)
  })

  it("compares a probe chat's ids in llama.cpp with training's, and catches the name changing them", async () => {
    const vocab = join(temporaryDirectory('invagent-vocab-'), 'phi3.gguf')
    copyFileSync(await bundledVocab('phi-3'), vocab)
    // The ids of the GGUF named Phi3 are Phi-3's (rstrip after chat markers, a ▁ before the word after them);
    // the same GGUF named "Mrgd" gives others.
    const template = await ModelTemplate.load(vocab)
    const trainingIds = template.tokenizeText(PROBE)
    await template.dispose()
    expect(trainingIds.slice(0, 2)).toEqual([32006, 887])
    expect(trainingIds.length).toBeGreaterThan(60)
    expect(await tokenIdsCheck(vocab, {text: PROBE, ids: trainingIds})).toMatchObject({ok: true})
    const merged = await tokenIdsCheck(renamed(vocab, 'Phi3', 'Mrgd'), {text: PROBE, ids: trainingIds})
    expect(merged.ok).toBe(false)
    // Without the rule, the newline after each chat marker becomes tokens of its own: more tokens.
    expect(Number(/is (\d+) tokens in llama\.cpp/.exec(merged.detail)?.[1])).toBeGreaterThan(trainingIds.length)
  })
})
