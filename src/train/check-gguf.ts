import {ModelTemplate} from '../dataset/token-count.js'
import {ExternalToolError} from '../errors.js'
import {inspectGguf, type GgufInspection} from '../models/inspect-gguf.js'

/*
 * The fetched GGUF, checked on this machine before anything is registered: it reads as a whole
 * GGUF (no truncation), and has the architecture the host's check saw, a vocabulary as large as
 * the embedding matrix (and the tokenizer the model was trained with), the end-of-turn token the
 * training taught as a control token, a chat template that writes it, a general.name that gives Phi-3
 * models llama.cpp's Phi-3 whitespace rule, and, where the trainer recorded one, the same token ids
 * for a probe chat in llama.cpp as in training.
 */

export interface GgufCheck {
  check: 'architecture' | 'vocabulary' | 'eot_token' | 'chat_template' | 'name' | 'token_ids'
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
  /** The general.name the host's converter was given. */
  name?: string | null
  /** A chat rendered by the training tokenizer's template and the ids training saw for it. */
  probe?: {text: string; ids: number[]} | null
}

/** Whether llama.cpp will tokenize chats with this GGUF the way training did, as far as general.name decides it. */
export function nameCheck(
  metadata: {architecture?: string; name?: string; tokenizerModel?: string},
  expectedName?: string | null,
): GgufCheck {
  const {name} = metadata
  const failed = (detail: string): GgufCheck => ({check: 'name', ok: false, detail})
  if (typeof name !== 'string' || name === '') return failed('general.name is missing')
  const named = `general.name is ${JSON.stringify(name)}`
  if (expectedName && name !== expectedName)
    return failed(`${named}, the host named it ${JSON.stringify(expectedName)}`)
  const phi3 = metadata.architecture === 'phi3' && metadata.tokenizerModel === 'llama'
  if (phi3 && !/phi-?3/i.test(name)) {
    return failed(
      `${named}: llama.cpp applies Phi-3's whitespace rule only to names containing phi3 or phi-3, so chats would be tokenized differently from training`,
    )
  }
  return {check: 'name', ok: true, detail: named}
}

/** The probe chat's ids as llama.cpp reads them from the GGUF, against the ids training saw. */
export async function tokenIdsCheck(path: string, probe: {text: string; ids: number[]}): Promise<GgufCheck> {
  const template = await ModelTemplate.load(path)
  try {
    const ids = template.tokenizeText(probe.text)
    let index = 0
    while (index < ids.length && index < probe.ids.length && ids[index] === probe.ids[index]) index++
    if (index === ids.length && index === probe.ids.length) {
      return {
        check: 'token_ids',
        ok: true,
        detail: `a probe chat is the same ${ids.length} tokens in llama.cpp as in training`,
      }
    }
    const around = (list: number[]) => JSON.stringify(list.slice(index, index + 4))
    return {
      check: 'token_ids',
      ok: false,
      detail:
        `a probe chat is ${ids.length} tokens in llama.cpp and ${probe.ids.length} in training, first different at token ${index} ` +
        `(${around(ids)} vs ${around(probe.ids)}): the model would be served another tokenization than it was trained on`,
    }
  } finally {
    await template.dispose()
  }
}

/** llama.cpp token types (tokenizer.ggml.token_type). */
const CONTROL = 3
const USER_DEFINED = 4
const KNOWN_EOT_TOKENS = ['<|end|>', '<|eot_id|>', '<|im_end|>', '<end_of_turn>']

/** Checks a GGUF file; never throws for a failed check (see `ok`), only for an unreadable file. */
export async function checkTrainedGguf(
  path: string,
  expected: GgufExpectations,
  options: {signal?: AbortSignal} = {},
): Promise<GgufCheckReport> {
  const inspection = await inspectGguf(path, {hash: false, signal: options.signal})
  const {readGgufFileInfo} = await import('node-llama-cpp')
  const info = await readGgufFileInfo(path, {sourceType: 'filesystem', logWarnings: false, signal: options.signal})
  const tokenizer = info.metadata.tokenizer as
    | {
        ggml?: {tokens?: readonly string[]; token_type?: readonly number[]; eot_token_id?: number}
        chat_template?: string
      }
    | undefined
  const tokens = tokenizer?.ggml?.tokens ?? []
  const types = tokenizer?.ggml?.token_type ?? []
  const checks: GgufCheck[] = []

  const architectureOk =
    inspection.architecture !== 'unknown' &&
    inspection.blockCount !== null &&
    (!expected.architecture || expected.architecture === inspection.architecture)
  checks.push({
    check: 'architecture',
    ok: architectureOk,
    detail: `${inspection.architecture}${expected.architecture ? ` (the host read ${expected.architecture})` : ''}, ${inspection.blockCount ?? '?'} blocks`,
  })

  const embedding = (info.fullTensorInfo ?? info.tensorInfo ?? []).find((tensor) => tensor.name === 'token_embd.weight')
  const rows = embedding && embedding.dimensions.length > 1 ? Number(embedding.dimensions[1]) : null
  const vocabularyOk =
    tokens.length > 0 &&
    rows === tokens.length &&
    (expected.vocabularySize == null || tokens.length >= expected.vocabularySize)
  checks.push({
    check: 'vocabulary',
    ok: vocabularyOk,
    detail: `${tokens.length} tokens, ${rows ?? 'no'} embedding rows${expected.vocabularySize == null ? '' : `, ${expected.vocabularySize} in the training tokenizer`}`,
  })

  const eot =
    expected.eotToken ??
    (tokenizer?.ggml?.eot_token_id !== undefined
      ? tokens[tokenizer.ggml.eot_token_id]
      : KNOWN_EOT_TOKENS.find((token) => tokens.includes(token)))
  const eotIndex = eot === undefined ? -1 : tokens.indexOf(eot)
  const eotSpecial =
    eotIndex >= 0 && (types.length === 0 || types[eotIndex] === CONTROL || types[eotIndex] === USER_DEFINED)
  checks.push({
    check: 'eot_token',
    ok: eotSpecial,
    detail:
      eot === undefined
        ? 'no end-of-turn token is named or recognisable'
        : eotIndex < 0
          ? `${eot} is not in the vocabulary`
          : `${eot} is token ${eotIndex}${eotSpecial ? ' (control)' : ', but a normal token: it would be produced as text'}`,
  })

  const template = tokenizer?.chat_template
  const templateOk =
    typeof template === 'string' &&
    template.trim() !== '' &&
    (eot === undefined || template.includes(eot) || template.includes('eos_token'))
  checks.push({
    check: 'chat_template',
    ok: templateOk,
    detail:
      typeof template === 'string'
        ? `present (${template.length} characters)${templateOk ? '' : `, but it never writes ${eot}`}`
        : 'missing',
  })

  const general = info.metadata.general as {name?: string} | undefined
  const tokenizerModel = (tokenizer as {ggml?: {model?: string}} | undefined)?.ggml?.model
  checks.push(nameCheck({architecture: inspection.architecture, name: general?.name, tokenizerModel}, expected.name))
  if (expected.probe) checks.push(await tokenIdsCheck(path, expected.probe))

  return {ok: checks.every((check) => check.ok), inspection, checks}
}

/** The checks as an error, for a file that failed them. */
export function ggufCheckError(path: string, report: GgufCheckReport): ExternalToolError {
  const failed = report.checks.filter((check) => !check.ok).map((check) => `${check.check}: ${check.detail}`)
  return new ExternalToolError(`the trained model ${path} failed its checks:\n  ${failed.join('\n  ')}`, {
    command: 'check',
    suggestions: [
      "Look at the conversion in the job's log (`invagent train logs JOB`); the base model's tokenizer or chat template may be one llama.cpp does not know.",
    ],
  })
}
