import {availableParallelism} from 'node:os'

import {
  getLlama,
  LlamaGrammarEvaluationState,
  LlamaLogLevel,
  resolveChatWrapper,
  type ChatHistoryItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  type LlamaModel,
} from 'node-llama-cpp'

import type {Finding} from '../detect/finding.js'
import {ConfigError, InvagentError} from '../errors.js'
import type {ChatMessage} from '../prompt/render.js'
import {stepJsonSchema} from '../prompt/step-grammar.js'
import type {Engine, EngineSession, TokenUsage} from './engine.js'
import {ModelEngineSession, type CompleteOptions, type Completer} from './model-session.js'

export interface EmbeddedEngineOptions {
  modelPath: string
  /** CPU threads; node-llama-cpp's own default ran 16× slower on a 2-core machine. */
  threads?: number
  contextSize?: number
  maxTokens?: number
  temperature?: number
  seed?: number
  /**
   * Flash attention. Off by default: on CPU, node-llama-cpp's "auto" turned it on and decoding
   * one token at a time was about twice as slow with it (bench/model.js, docs in README).
   */
  flashAttention?: boolean
}

/** Chat messages in node-llama-cpp's history form, ending with an open assistant turn. */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((message): ChatHistoryItem => {
    if (message.role === 'system') return {type: 'system', text: message.content}
    if (message.role === 'user') return {type: 'user', text: message.content}
    return {type: 'model', response: [message.content]}
  })
  history.push({type: 'model', response: []})
  return history
}

/**
 * In-process inference with node-llama-cpp. One context sequence is kept for the whole run: each
 * turn's prompt shares its prefix (system prompt, tool catalogue, the finding, earlier turns)
 * with what the sequence already holds, so only the new tokens are evaluated.
 */
export class EmbeddedEngine implements Engine, Completer {
  readonly name = 'embedded'
  readonly totals: TokenUsage & {generationMs: number; steps: number} = {
    promptTokens: 0,
    completionTokens: 0,
    cachedPromptTokens: 0,
    generationMs: 0,
    steps: 0,
  }
  private readonly llama: Llama
  private readonly model: LlamaModel
  private readonly context: LlamaContext
  private readonly sequence: LlamaContextSequence
  private readonly grammar: LlamaGrammar
  /** Grammars asked for by text (CompleteOptions.grammar), compiled once each. */
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>()
  private readonly chatWrapper: NonNullable<ReturnType<typeof resolveChatWrapper>>
  private readonly options: Required<Omit<EmbeddedEngineOptions, 'seed' | 'flashAttention'>> & {seed?: number}

  private constructor(
    llama: Llama,
    model: LlamaModel,
    context: LlamaContext,
    grammar: LlamaGrammar,
    options: EmbeddedEngine['options'],
  ) {
    this.llama = llama
    this.model = model
    this.context = context
    this.sequence = context.getSequence()
    this.grammar = grammar
    this.chatWrapper = resolveChatWrapper(model)
    this.options = options
  }

  static async load(options: EmbeddedEngineOptions): Promise<EmbeddedEngine> {
    const threads = options.threads ?? availableParallelism()
    // Prebuilt CPU binaries only: never start a native build from inside an audit.
    const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.error, build: 'never'})
    let model: LlamaModel
    try {
      model = await llama.loadModel({modelPath: options.modelPath})
    } catch (error) {
      throw new ConfigError(`cannot load the model ${options.modelPath}: ${(error as Error).message}`, {
        code: 'MODEL_LOAD',
        cause: error,
        suggestions: ['Check the path with `invagent models inspect PATH`.'],
      })
    }
    const contextSize = Math.min(options.contextSize ?? 4096, model.trainContextSize)
    const context = await model.createContext({
      contextSize,
      threads,
      sequences: 1,
      flashAttention: options.flashAttention ?? false,
    })
    const grammar = await llama.createGrammarForJsonSchema(stepJsonSchema() as never)
    return new EmbeddedEngine(llama, model, context, grammar, {
      modelPath: options.modelPath,
      threads,
      contextSize: context.contextSize,
      maxTokens: options.maxTokens ?? 256,
      temperature: options.temperature ?? 0,
      seed: options.seed,
    })
  }

  get contextSize(): number {
    return this.context.contextSize
  }

  start(finding: Finding): EngineSession {
    return new ModelEngineSession(finding, this)
  }

  /** Token count of a rendered conversation, as this model's template and tokenizer see it. */
  tokenize(messages: readonly ChatMessage[]) {
    const {contextText} = this.chatWrapper.generateContextState({chatHistory: toChatHistory(messages)})
    return contextText.tokenize(this.model.tokenizer)
  }

  private grammarFor(options: CompleteOptions): Promise<LlamaGrammar> | undefined {
    if (options.grammar === undefined) return Promise.resolve(this.grammar)
    if (options.grammar === null) return undefined
    let grammar = this.grammars.get(options.grammar)
    if (!grammar) {
      grammar = this.llama.createGrammar({grammar: options.grammar})
      this.grammars.set(options.grammar, grammar)
    }
    return grammar
  }

  async complete(
    messages: ChatMessage[],
    options: CompleteOptions = {},
  ): Promise<{text: string; usage: TokenUsage; hitTokenLimit: boolean}> {
    const grammar = await this.grammarFor(options)
    const tokens = this.tokenize(messages)
    const {maxTokens} = this.options
    if (tokens.length + maxTokens > this.context.contextSize) {
      // Never drop the front of the prompt (the rules and the finding): fail loudly instead.
      throw new InvagentError(
        `the prompt is ${tokens.length} tokens and up to ${maxTokens} more may be generated, above the context size of ${this.context.contextSize}`,
        {
          code: 'PROMPT_TOO_LONG',
          suggestions: ['Raise --ctx, or lower --max-tokens.'],
        },
      )
    }
    const started = performance.now()
    await this.sequence.adaptStateToTokens(tokens, false)
    // At least one token must be evaluated to get the next token's probabilities.
    let reused = Math.min(this.sequence.nextTokenIndex, tokens.length - 1)
    if (reused < this.sequence.nextTokenIndex)
      await this.sequence.eraseContextTokenRanges([{start: reused, end: this.sequence.nextTokenIndex}])
    reused = this.sequence.nextTokenIndex
    const grammarEvaluationState = grammar ? new LlamaGrammarEvaluationState({model: this.model, grammar}) : undefined
    const generated: number[] = []
    let hitTokenLimit = false
    for await (const token of this.sequence.evaluate(tokens.slice(reused), {
      grammarEvaluationState,
      temperature: this.options.temperature,
      seed: this.options.seed,
    })) {
      if (this.model.isEogToken(token)) break
      generated.push(token)
      if (generated.length >= maxTokens) {
        hitTokenLimit = true
        break
      }
    }
    const usage = {promptTokens: tokens.length, completionTokens: generated.length, cachedPromptTokens: reused}
    this.totals.promptTokens += usage.promptTokens
    this.totals.completionTokens += usage.completionTokens
    this.totals.cachedPromptTokens += usage.cachedPromptTokens
    this.totals.generationMs += performance.now() - started
    this.totals.steps++
    return {text: this.model.detokenize(generated as never), usage, hitTokenLimit}
  }

  async close(): Promise<void> {
    await this.context.dispose()
    await this.model.dispose()
    await this.llama.dispose()
  }
}
