import {ExternalToolError} from '../errors.js'
import {inspectGguf, type GgufInspection} from '../models/inspect-gguf.js'

/*
 * The fetched GGUF, checked on this machine before anything is registered: it reads as a whole
 * GGUF (no truncation), and has the architecture the host's check saw, a vocabulary as large as
 * the embedding matrix (and the tokenizer the model was trained with), the end-of-turn token the
 * training taught as a control token, and a chat template that writes it.
 */

export interface GgufCheck {
  check: 'architecture' | 'vocabulary' | 'eot_token' | 'chat_template'
  ok: boolean
  detail: string
}

export interface GgufCheckReport {
  ok: boolean
  inspection: GgufInspection
  checks: GgufCheck[]
}

export interface GgufExpectations {
  /** The architecture the host's verify_gguf.py read. */
  architecture?: string | null
  /** The end-of-turn token train.py trained (e.g. <|end|>). */
  eotToken?: string | null
  /** The training tokenizer's vocabulary size: the GGUF's may be padded, never smaller. */
  vocabularySize?: number | null
}

/** llama.cpp token types (tokenizer.ggml.token_type). */
const CONTROL = 3
const USER_DEFINED = 4
const KNOWN_EOT_TOKENS = ['<|end|>', '<|eot_id|>', '<|im_end|>', '<end_of_turn>']

/** Checks a GGUF file; never throws for a failed check (see `ok`), only for an unreadable file. */
export async function checkTrainedGguf(path: string, expected: GgufExpectations, options: {signal?: AbortSignal} = {}): Promise<GgufCheckReport> {
  const inspection = await inspectGguf(path, {hash: false, signal: options.signal})
  const {readGgufFileInfo} = await import('node-llama-cpp')
  const info = await readGgufFileInfo(path, {sourceType: 'filesystem', logWarnings: false, signal: options.signal})
  const tokenizer = info.metadata.tokenizer as {ggml?: {tokens?: readonly string[]; token_type?: readonly number[]; eot_token_id?: number}; chat_template?: string} | undefined
  const tokens = tokenizer?.ggml?.tokens ?? []
  const types = tokenizer?.ggml?.token_type ?? []
  const checks: GgufCheck[] = []

  const architectureOk = inspection.architecture !== 'unknown' && inspection.blockCount !== null && (!expected.architecture || expected.architecture === inspection.architecture)
  checks.push({check: 'architecture', ok: architectureOk, detail: `${inspection.architecture}${expected.architecture ? ` (the host read ${expected.architecture})` : ''}, ${inspection.blockCount ?? '?'} blocks`})

  const embedding = (info.fullTensorInfo ?? info.tensorInfo ?? []).find((tensor) => tensor.name === 'token_embd.weight')
  const rows = embedding && embedding.dimensions.length > 1 ? Number(embedding.dimensions[1]) : null
  const vocabularyOk = tokens.length > 0 && rows === tokens.length && (expected.vocabularySize == null || tokens.length >= expected.vocabularySize)
  checks.push({
    check: 'vocabulary',
    ok: vocabularyOk,
    detail: `${tokens.length} tokens, ${rows ?? 'no'} embedding rows${expected.vocabularySize == null ? '' : `, ${expected.vocabularySize} in the training tokenizer`}`,
  })

  const eot = expected.eotToken ?? (tokenizer?.ggml?.eot_token_id !== undefined ? tokens[tokenizer.ggml.eot_token_id] : KNOWN_EOT_TOKENS.find((token) => tokens.includes(token)))
  const eotIndex = eot === undefined ? -1 : tokens.indexOf(eot)
  const eotSpecial = eotIndex >= 0 && (types.length === 0 || types[eotIndex] === CONTROL || types[eotIndex] === USER_DEFINED)
  checks.push({
    check: 'eot_token',
    ok: eotSpecial,
    detail: eot === undefined ? 'no end-of-turn token is named or recognisable' : eotIndex < 0 ? `${eot} is not in the vocabulary` : `${eot} is token ${eotIndex}${eotSpecial ? ' (control)' : ', but a normal token: it would be produced as text'}`,
  })

  const template = tokenizer?.chat_template
  const templateOk = typeof template === 'string' && template.trim() !== '' && (eot === undefined || template.includes(eot) || template.includes('eos_token'))
  checks.push({check: 'chat_template', ok: templateOk, detail: typeof template === 'string' ? `present (${template.length} characters)${templateOk ? '' : `, but it never writes ${eot}`}` : 'missing'})

  return {ok: checks.every((check) => check.ok), inspection, checks}
}

/** The checks as an error, for a file that failed them. */
export function ggufCheckError(path: string, report: GgufCheckReport): ExternalToolError {
  const failed = report.checks.filter((check) => !check.ok).map((check) => `${check.check}: ${check.detail}`)
  return new ExternalToolError(`the trained model ${path} failed its checks:\n  ${failed.join('\n  ')}`, {
    command: 'check',
    suggestions: ['Look at the conversion in the job\'s log (`invagent train logs JOB`); the base model\'s tokenizer or chat template may be one llama.cpp does not know.'],
  })
}
