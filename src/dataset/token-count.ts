import {basename} from 'node:path'

import {
  getLlama,
  JinjaTemplateChatWrapper,
  Llama,
  LlamaLogLevel,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatWrapper,
  type LlamaModel,
} from 'node-llama-cpp'

import {ConfigError, UserError} from '../errors.js'
import type {ChatMessage} from '../prompt/render.js'
import {exampleMessages} from './render-example.js'
import type {PlaybookExample} from './schema.js'

/*
 * A model's own tokenizer and chat template, loaded vocabulary-only (no weights in memory), to
 * measure examples as training will see them and to check that the template keeps every message.
 */

export interface TokenCounter {
  model: string
  count(example: PlaybookExample): Promise<number>
}

function history(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  return messages.map((message): ChatHistoryItem =>
    message.role === 'system'
      ? {type: 'system', text: message.content}
      : message.role === 'user'
        ? {type: 'user', text: message.content}
        : {type: 'model', response: [message.content]},
  )
}

/*
 * node-llama-cpp estimates memory by simulating a full load, also for a vocabulary-only one, and
 * llama.cpp logs that simulated load failing on a GGUF without tensors (llama.cpp's own vocab
 * files). Expected, and not the user's concern; a real failure still throws from loadModel.
 */
const SIMULATED_LOAD_NOISE = [
  /missing tensor 'token_embd\.weight'/,
  /llama_model_load_from_file_impl: failed to load model/,
]

function quietVocabOnlyLogger(level: LlamaLogLevel, message: string): void {
  if (SIMULATED_LOAD_NOISE.some((pattern) => pattern.test(message))) return
  Llama.defaultConsoleLogger(level, message)
}

export class ModelTemplate implements TokenCounter {
  readonly model: string
  private readonly llamaModel: LlamaModel
  private readonly wrapper: ChatWrapper

  private constructor(llamaModel: LlamaModel, wrapper: ChatWrapper, path: string) {
    this.llamaModel = llamaModel
    this.wrapper = wrapper
    this.model = basename(path)
  }

  /** Loads the vocabulary and chat template of a GGUF; `ownTemplate` insists on the file's Jinja template. */
  static async load(path: string, options: {ownTemplate?: boolean} = {}): Promise<ModelTemplate> {
    const llama = await getLlama({
      gpu: false,
      logLevel: LlamaLogLevel.error,
      build: 'never',
      logger: quietVocabOnlyLogger,
    })
    let model: LlamaModel
    try {
      model = await llama.loadModel({modelPath: path, vocabOnly: true})
    } catch (error) {
      throw new ConfigError(`cannot load the vocabulary of ${path}: ${(error as Error).message}`, {
        code: 'MODEL_LOAD',
        cause: error,
        suggestions: ['Check the file with `invagent models inspect PATH`.'],
      })
    }
    const template = model.fileInfo.metadata.tokenizer?.chat_template
    if (options.ownTemplate) {
      if (typeof template !== 'string' || template.trim() === '')
        throw new ConfigError(`${path} has no chat template (tokenizer.chat_template)`, {
          code: 'NO_CHAT_TEMPLATE',
          suggestions: ['Use a GGUF converted with its tokenizer_config.json, or drop --template.'],
        })
      let wrapper: JinjaTemplateChatWrapper
      try {
        wrapper = new JinjaTemplateChatWrapper({template, convertUnsupportedSystemMessagesToUserMessages: false})
      } catch (error) {
        // node-llama-cpp renders sample messages (a system one included) and checks each survives.
        throw new UserError(
          `${basename(path)}'s chat template drops or alters messages: ${(error as Error).message.replaceAll(/\s+/g, ' ').trim()}`,
          {
            code: 'TEMPLATE_DROPS_CONTENT',
            suggestions: [
              "Every exported conversation starts with the system prompt: use a GGUF whose chat template renders the system role (Phi-3's later templates do). Nothing was written.",
            ],
          },
        )
      }
      return new ModelTemplate(model, wrapper, path)
    }
    return new ModelTemplate(model, resolveChatWrapper(model), path)
  }

  /** The text the template produces for these messages, special tokens written out. */
  render(messages: readonly ChatMessage[]): string {
    const {contextText} = this.wrapper.generateContextState({chatHistory: history(messages)})
    return contextText.toString()
  }

  /** Token ids of a text as llama.cpp reads it from this GGUF (special tokens written in the text parsed as such). */
  tokenizeText(text: string): number[] {
    return Array.from(this.llamaModel.tokenize(text, true))
  }

  /** Frees the vocabulary. */
  async dispose(): Promise<void> {
    await this.llamaModel.dispose()
  }

  tokens(messages: readonly ChatMessage[]): number {
    const {contextText} = this.wrapper.generateContextState({chatHistory: history(messages)})
    return contextText.tokenize(this.llamaModel.tokenizer).length
  }

  async count(example: PlaybookExample): Promise<number> {
    return this.tokens(exampleMessages(example))
  }

  /** Messages whose content does not survive the template (dropped or altered). */
  droppedContent(messages: readonly ChatMessage[]): Array<{index: number; role: string}> {
    const text = this.render(messages)
    return messages.flatMap((message, index) => (text.includes(message.content) ? [] : [{index, role: message.role}]))
  }
}
