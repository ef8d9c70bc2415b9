import {getLlama, LlamaLogLevel} from 'node-llama-cpp'

import type {Finding} from '../detect/finding.js'
import {ExternalToolError, InvagentError, UserError} from '../errors.js'
import type {ChatMessage} from '../prompt/render.js'
import {stepJsonSchema} from '../prompt/step-grammar.js'
import type {Engine, EngineSession, TokenUsage} from './engine.js'
import {ModelEngineSession, type CompleteOptions, type Completer} from './model-session.js'

export interface ServerEngineOptions {
  /** Base URL of llama-server or any OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080 */
  url: string
  model?: string
  maxTokens?: number
  temperature?: number
  seed?: number
  /** Per-request timeout. */
  timeoutMs?: number
  /** Sent as a bearer token; read from INVAGENT_API_KEY, never logged. */
  apiKey?: string
}

interface ChatCompletionResponse {
  choices?: Array<{message?: {content?: string | null}; finish_reason?: string}>
  usage?: {prompt_tokens?: number; completion_tokens?: number}
  timings?: {cache_n?: number; prompt_n?: number; predicted_n?: number}
}

/** The GBNF grammar of a step, converted by node-llama-cpp from the one step schema. */
export async function stepGrammarText(): Promise<string> {
  const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.error, build: 'never'})
  try {
    return (await llama.createGrammarForJsonSchema(stepJsonSchema() as never)).grammar
  } finally {
    await llama.dispose()
  }
}

/**
 * A model behind an OpenAI-compatible HTTP endpoint, llama-server first. Every step is decoded
 * under the GBNF grammar of the step schema (`grammar`, which llama-server applies; its
 * json_schema response_format failed on small models), the prompt cache is asked for
 * (`cache_prompt`) and measured (`timings.cache_n`), and prompts are counted with the server's
 * own template and tokenizer before they are sent, so the front is never truncated.
 */
export class ServerEngine implements Engine, Completer {
  readonly name = 'server'
  readonly totals: TokenUsage & {generationMs: number; steps: number} = {
    promptTokens: 0,
    completionTokens: 0,
    cachedPromptTokens: 0,
    generationMs: 0,
    steps: 0,
  }
  private readonly options: ServerEngineOptions & {maxTokens: number; timeoutMs: number}
  private readonly base: string
  private readonly grammar: string
  /** Context size reported by llama-server; undefined for other endpoints. */
  readonly contextSize: number | undefined

  private constructor(options: ServerEngine['options'], grammar: string, contextSize: number | undefined) {
    this.options = options
    this.base = options.url.replace(/\/+$/, '')
    this.grammar = grammar
    this.contextSize = contextSize
  }

  static async connect(options: ServerEngineOptions): Promise<ServerEngine> {
    let url: URL
    try {
      url = new URL(options.url)
    } catch {
      throw new UserError(`--url "${options.url}" is not a URL`, {
        suggestions: ['For example --url http://127.0.0.1:8080'],
      })
    }
    const resolved = {
      ...options,
      url: url.toString(),
      maxTokens: options.maxTokens ?? 256,
      timeoutMs: options.timeoutMs ?? 120_000,
    }
    const probe = new ServerEngine(resolved, '', undefined)
    const props = await probe
      .request<{default_generation_settings?: {n_ctx?: number}; n_ctx?: number}>('GET', '/props')
      .catch((error: unknown) => {
        if (error instanceof ExternalToolError && error.processExitCode === undefined) throw error
        return undefined
      })
    const contextSize = props?.default_generation_settings?.n_ctx ?? props?.n_ctx
    return new ServerEngine(resolved, await stepGrammarText(), contextSize)
  }

  start(finding: Finding): EngineSession {
    return new ModelEngineSession(finding, this)
  }

  private async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {'content-type': 'application/json'}
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`
    let response: Response
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      })
    } catch (error) {
      const cause = (error as {cause?: {code?: string}}).cause?.code ?? (error as Error).name
      throw new ExternalToolError(`the model server at ${this.base} is unavailable (${cause})`, {
        command: `${method} ${this.base}${path}`,
        cause: error,
        suggestions: ['Start one with `invagent serve --model PATH`, or check --url.'],
      })
    }
    const text = await response.text()
    if (!response.ok) {
      throw new ExternalToolError(`${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`, {
        command: `${method} ${this.base}${path}`,
        exitCode: response.status,
        stderrTail: text.slice(-2000),
      })
    }
    return JSON.parse(text) as T
  }

  /** Prompt tokens of a conversation by the server's own chat template and tokenizer (llama-server only). */
  async countTokens(messages: ChatMessage[]): Promise<number | undefined> {
    if (this.contextSize === undefined) return undefined
    const {prompt} = await this.request<{prompt: string}>('POST', '/apply-template', {messages})
    const {tokens} = await this.request<{tokens: unknown[]}>('POST', '/tokenize', {
      content: prompt,
      add_special: true,
      parse_special: true,
    })
    return tokens.length
  }

  async complete(
    messages: ChatMessage[],
    options: CompleteOptions = {},
  ): Promise<{text: string; usage: TokenUsage; hitTokenLimit: boolean}> {
    const {maxTokens} = this.options
    const counted = await this.countTokens(messages)
    if (counted !== undefined && this.contextSize !== undefined && counted + maxTokens > this.contextSize) {
      throw new InvagentError(
        `the prompt is ${counted} tokens and up to ${maxTokens} more may be generated, above the server's context size of ${this.contextSize}`,
        {
          code: 'PROMPT_TOO_LONG',
          suggestions: ['Start the server with a larger --ctx, or lower --max-tokens.'],
        },
      )
    }
    const started = performance.now()
    const response = await this.request<ChatCompletionResponse>('POST', '/v1/chat/completions', {
      model: this.options.model ?? 'invagent',
      messages,
      max_tokens: maxTokens,
      temperature: this.options.temperature ?? 0,
      seed: this.options.seed,
      grammar: options.grammar === undefined ? this.grammar : (options.grammar ?? undefined),
      cache_prompt: true,
      stream: false,
    })
    const choice = response.choices?.[0]
    const usage = {
      promptTokens: response.usage?.prompt_tokens ?? counted ?? 0,
      completionTokens: response.usage?.completion_tokens ?? 0,
      cachedPromptTokens: response.timings?.cache_n ?? 0,
    }
    this.totals.promptTokens += usage.promptTokens
    this.totals.completionTokens += usage.completionTokens
    this.totals.cachedPromptTokens += usage.cachedPromptTokens
    this.totals.generationMs += performance.now() - started
    this.totals.steps++
    return {text: choice?.message?.content ?? '', usage, hitTokenLimit: choice?.finish_reason === 'length'}
  }
}
