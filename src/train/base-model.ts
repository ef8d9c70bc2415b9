import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {ConfigError} from '../errors.js'

/*
 * The base model as a folder: any causal language model in the Hugging Face layout with its own chat
 * template (Phi-3, Qwen2.5, Llama 3.2, …). Where the folder is on this machine (--runner local) it is
 * checked before anything is built; on a remote host train.py checks the same in check-env.
 */

/** Whether a baseModel names a folder (a path) rather than a Hugging Face id. */
export function isModelPath(baseModel: string): boolean {
  return /^[./~]/.test(baseModel) || baseModel.split('/').length > 2
}

function readJson(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/** What keeps a local folder from being a base model train.py can fine-tune; empty when nothing does. */
export function baseModelFolderProblems(folder: string): string[] {
  if (!existsSync(folder)) return [`${folder} does not exist`]
  const config = readJson(join(folder, 'config.json'))
  if (!config) return [`${folder} has no readable config.json: expected a Hugging Face model folder`]
  const problems: string[] = []
  const architectures = Array.isArray(config.architectures) ? (config.architectures as unknown[]).map(String) : []
  if (!architectures.some((name) => name.endsWith('ForCausalLM'))) {
    problems.push(`config.json names no causal language model (architectures: ${JSON.stringify(architectures)})`)
  }
  const tokenizerConfig = readJson(join(folder, 'tokenizer_config.json')) ?? {}
  const template = tokenizerConfig.chat_template
  const templateFile = ['chat_template.jinja', 'chat_template.json'].some((name) => existsSync(join(folder, name)))
  if (typeof template !== 'string' && !Array.isArray(template) && !templateFile) {
    problems.push(
      'no chat template (tokenizer_config.json chat_template, or chat_template.jinja): invagent trains chat models only',
    )
  }
  if (!['tokenizer.json', 'tokenizer.model'].some((name) => existsSync(join(folder, name))))
    problems.push('no tokenizer.json or tokenizer.model')
  return problems
}

/** Refuses a local base model folder that train.py would refuse on the GPU later. */
export function checkLocalBaseModel(folder: string): void {
  const problems = baseModelFolderProblems(folder)
  if (problems.length === 0) return
  throw new ConfigError(`baseModel ${folder}: ${problems.join('; ')}`, {
    code: 'BASE_MODEL_INVALID',
    suggestions: [
      'Give a folder with a causal language model and its tokenizer and chat template, as `hf download ORG/MODEL --local-dir DIR` writes it.',
    ],
  })
}
