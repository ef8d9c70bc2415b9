import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {DatasetExportOutput, DatasetValidateOutput} from '../../src/cli/output-schemas.js'
import {systemPrompt} from '../../src/prompt/render.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'

// The original Phi-3-mini-4k-instruct template has no system branch: it drops the system prompt.
const SYSTEM_DROPPING_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}" +
  "{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\\n'}}{% endif %}{% endfor %}"

describe('dataset export --template and validate --model with a GGUF', () => {
  it("renders through the model's own template, and fails, writing nothing, when the template drops the system prompt", async () => {
    const cwd = temporaryDirectory()
    const keeps = join(cwd, 'keeps.gguf')
    const drops = join(cwd, 'drops.gguf')
    writeTinyGguf(keeps)
    writeTinyGguf(drops, {chatTemplate: SYSTEM_DROPPING_TEMPLATE})
    const dataset = join(process.cwd(), 'test/fixtures/dataset/valid.jsonl')

    const ok = await runCli(
      ['dataset', 'export', dataset, '--template', keeps, '--out', join(cwd, 'ok.jsonl'), '--json'],
      cwd,
    )
    expect(ok.exitCode, ok.stderr).toBe(0)
    const result = DatasetExportOutput.parse(ok.json)
    expect(result.examples).toBe(3)
    expect(result.template).toEqual({model: 'keeps.gguf', checked: 3})
    expect(readFileSync(join(cwd, 'ok.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3)

    const bad = await runCli(['dataset', 'export', dataset, '--template', drops, '--out', join(cwd, 'bad.jsonl')], cwd)
    expect(bad.exitCode, bad.stderr).toBe(2)
    expect(bad.stderr).toMatch(/drops\.gguf's chat template drops or alters messages/)
    expect(() => readFileSync(join(cwd, 'bad.jsonl'))).toThrow()
  })

  it("counts tokens in the model's tokenizer and flags examples over --max-tokens", async () => {
    const cwd = temporaryDirectory()
    const model = join(cwd, 'tiny.gguf')
    writeTinyGguf(model)
    const dataset = join(process.cwd(), 'test/fixtures/dataset/valid.jsonl')
    const under = await runCli(
      ['dataset', 'validate', dataset, '--model', model, '--max-tokens', '100000', '--json'],
      cwd,
    )
    expect(under.exitCode, under.stderr).toBe(0)
    const longest = DatasetValidateOutput.parse(under.json).tokens!.longest
    // A byte-level vocabulary: at least one token per byte, so more than the system prompt alone.
    expect(longest).toBeGreaterThan(systemPrompt().length)
    const over = await runCli(
      ['dataset', 'validate', dataset, '--model', model, '--max-tokens', String(longest - 1), '--json'],
      cwd,
    )
    expect(over.exitCode).toBe(1)
    const report = DatasetValidateOutput.parse(over.json)
    expect(report.tokens!.over).toBe(1)
    expect(report.problems.map((problem) => problem.code)).toEqual(['too-long'])
    expect(report.problems[0].message).toContain(
      `${longest} tokens in tiny.gguf's tokenizer, over the limit of ${longest - 1}`,
    )
  })
})

describe("Phi-3's real tokenizer, from the llama.cpp source node-llama-cpp ships", () => {
  it('measures the shipped playbook: every conversation fits a 2,048-token fine-tune', {timeout: 120_000}, async () => {
    // An empty cache: the vocabulary is taken out of the git bundle itself, as on a fresh machine.
    const cwd = temporaryDirectory()
    const cache = temporaryDirectory()
    const files = ['datasets/playbook.jsonl', 'datasets/eval.jsonl'].map((file) => join(process.cwd(), file))
    const result = await runCli(
      ['dataset', 'validate', ...files, '--model', 'phi-3', '--max-tokens', '2048', '--json'],
      cwd,
      {INVAGENT_CACHE: cache},
    )
    expect(result.exitCode, result.stderr).toBe(0)
    // llama.cpp's benign report of node-llama-cpp's simulated full load stays out of the output.
    expect(result.stderr).not.toContain('missing tensor')
    const report = DatasetValidateOutput.parse(result.json)
    expect(report.examples).toBe(416)
    expect(report.tokens!.model).toBe('ggml-vocab-phi-3.gguf')
    expect(report.tokens!.over).toBe(0)
    // The system prompt alone is several hundred tokens: a real count, not a byte count.
    expect(report.tokens!.longest).toBeGreaterThan(1500)
    expect(report.tokens!.longest).toBeLessThanOrEqual(2048)
    expect(
      readFileSync(join(cache, 'llama.cpp', readdirSync(join(cache, 'llama.cpp'))[0], 'ggml-vocab-phi-3.gguf'))
        .subarray(0, 4)
        .toString(),
    ).toBe('GGUF')

    // Phi-3's template in llama.cpp's vocabulary file is the original one, without a system role.
    const exported = await runCli(
      ['dataset', 'export', files[1], '--template', 'phi-3', '--out', join(cwd, 'x.jsonl')],
      cwd,
      {INVAGENT_CACHE: cache},
    )
    expect(exported.exitCode).toBe(2)
    expect(exported.stderr).toMatch(/ggml-vocab-phi-3\.gguf's chat template drops or alters messages/)
  })

  it('names the vocabularies it has when the name is wrong', async () => {
    const cwd = temporaryDirectory()
    const result = await runCli(
      ['dataset', 'validate', join(process.cwd(), 'datasets/eval.jsonl'), '--model', 'phi3x'],
      cwd,
      {INVAGENT_CACHE: temporaryDirectory()},
    )
    expect(result.exitCode).toBe(3)
    const message = result.stderr.replace(/\s*\n\s*›\s+/g, ' ')
    expect(message).toContain('no model, GGUF file or bundled vocabulary is called "phi3x" — did you mean "phi-3"?')
    expect(message).toMatch(/a vocabulary llama\.cpp ships: .*llama-spm.*phi-3.*qwen2/)
  })
})
