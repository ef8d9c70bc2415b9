import {availableParallelism} from 'node:os'

import {ConfigError, ExternalToolError, UserError} from '../../errors.js'
import type {LlamaServer} from '../../llama/serve.js'

/*
 * Sentence embeddings for the semantic metric, from an embedding GGUF: in-process through
 * node-llama-cpp's embedding context (with the embedded engine), or from llama-server's
 * /embedding endpoint (with the server engine: a llama-server started here with --embedding, or
 * one already running). Both give the model's pooled vector; for a model without pooling, the
 * last token's vector, which is what node-llama-cpp returns too.
 */

export interface Embedder {
  /** `embedded` (node-llama-cpp) or `server` (llama-server's /embedding). */
  readonly kind: 'embedded' | 'server'
  /** The GGUF path, or the endpoint's URL. */
  readonly source: string
  embed(text: string): Promise<number[]>
  close(): Promise<void>
}

export interface EmbedderOptions {
  /** GGUF path (or registered name) of the embedding model. */
  model?: string
  /** A llama-server already serving embeddings (started with --embedding), instead of `model`. */
  url?: string
  /** Who computes: node-llama-cpp in this process, or llama-server. */
  kind: 'embedded' | 'server'
  threads?: number
  /** Context of the embedding model: the longest text it can embed. Default 2048 (at most its training context). */
  contextSize?: number
  /** Per request to llama-server. */
  timeoutMs?: number
}

/** node-llama-cpp's embedding context on a GGUF. */
class LlamaCppEmbedder implements Embedder {
  readonly kind = 'embedded'
  readonly source: string
  private readonly release: () => Promise<void>
  private readonly context: {getEmbeddingFor(text: string): Promise<{vector: readonly number[]}>}

  constructor(source: string, context: LlamaCppEmbedder['context'], release: () => Promise<void>) {
    this.source = source
    this.context = context
    this.release = release
  }

  static async load(modelPath: string, options: EmbedderOptions): Promise<LlamaCppEmbedder> {
    const {getLlama, LlamaLogLevel} = await import('node-llama-cpp')
    // Prebuilt CPU binaries only, as the embedded engine: never a native build inside an eval.
    const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.error, build: 'never'})
    try {
      const model = await llama.loadModel({modelPath})
      const contextSize = Math.min(options.contextSize ?? 2048, model.trainContextSize)
      const context = await model.createEmbeddingContext({
        contextSize,
        threads: options.threads ?? availableParallelism(),
      })
      return new LlamaCppEmbedder(modelPath, context, async () => {
        await context.dispose()
        await model.dispose()
        await llama.dispose()
      })
    } catch (error) {
      await llama.dispose()
      throw new ConfigError(`cannot load the embedding model ${modelPath}: ${(error as Error).message}`, {
        code: 'EMBEDDING_MODEL_LOAD',
        cause: error,
        suggestions: ['Check the path with `invagent models inspect PATH`; --embedding-model takes a GGUF.'],
      })
    }
  }

  async embed(text: string): Promise<number[]> {
    return [...(await this.context.getEmbeddingFor(text)).vector]
  }

  close(): Promise<void> {
    return this.release()
  }
}

/**
 * What llama-server's /embedding answers: a list of {index, embedding} (one vector, or one per
 * token without pooling), or one object in older builds.
 */
type EmbeddingResponse = Array<{embedding?: number[] | number[][]}> | {embedding?: number[] | number[][]}

/** The pooled vector in a /embedding answer: the vector itself, or the last token's when the model does no pooling. */
export function vectorOf(response: EmbeddingResponse): number[] | undefined {
  const entry = Array.isArray(response) ? response[0] : response
  const embedding = entry?.embedding
  if (!Array.isArray(embedding) || embedding.length === 0) return undefined
  if (Array.isArray(embedding[0])) return embedding.at(-1) as number[]
  return embedding as number[]
}

/** llama-server's /embedding endpoint. */
class ServerEmbedder implements Embedder {
  readonly kind = 'server'
  readonly source: string
  private readonly base: string
  private readonly timeoutMs: number
  private readonly server?: LlamaServer

  constructor(url: string, timeoutMs: number, server?: LlamaServer) {
    this.base = url.replace(/\/+$/, '')
    this.source = server ? server.model : this.base
    this.timeoutMs = timeoutMs
    this.server = server
  }

  async embed(text: string): Promise<number[]> {
    const url = `${this.base}/embedding`
    let response: Response
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({content: text}),
        signal: AbortSignal.timeout(this.timeoutMs),
      })
    } catch (error) {
      const cause = (error as {cause?: {code?: string}}).cause?.code ?? (error as Error).name
      throw new ExternalToolError(`the embedding server at ${this.base} is unavailable (${cause})`, {
        command: `POST ${url}`,
        cause: error,
        suggestions: ['Check --embedding-url, or give --embedding-model to have one started.'],
      })
    }
    const body = await response.text()
    if (!response.ok) {
      throw new ExternalToolError(`POST /embedding answered ${response.status}: ${body.slice(0, 300)}`, {
        command: `POST ${url}`,
        exitCode: response.status,
        stderrTail: body.slice(-2000),
        suggestions: ['An llama-server computes embeddings only when started with --embedding.'],
      })
    }
    const vector = vectorOf(JSON.parse(body) as EmbeddingResponse)
    if (!vector)
      throw new ExternalToolError(`POST /embedding answered without an embedding: ${body.slice(0, 200)}`, {
        command: `POST ${url}`,
      })
    return vector
  }

  async close(): Promise<void> {
    await this.server?.stop()
  }
}

/**
 * The embedder for a run: node-llama-cpp for the embedded engine; for the server engine an
 * llama-server started on the embedding model with --embedding (stopped again by close), or
 * the one at `url`.
 */
export async function createEmbedder(options: EmbedderOptions): Promise<Embedder> {
  if (options.url !== undefined) {
    try {
      new URL(options.url)
    } catch {
      throw new UserError(`--embedding-url "${options.url}" is not a URL`, {
        suggestions: ['For example --embedding-url http://127.0.0.1:8081'],
      })
    }
    return new ServerEmbedder(options.url, options.timeoutMs ?? 120_000)
  }
  if (options.model === undefined)
    throw new UserError('no embedding model given', {suggestions: ['Pass --embedding-model PATH (a GGUF).']})
  const {resolveModel} = await import('../../models/registry.js')
  const modelPath = resolveModel(options.model).path
  if (options.kind === 'embedded') return LlamaCppEmbedder.load(modelPath, options)
  const {startLlamaServer} = await import('../../llama/serve.js')
  const server = await startLlamaServer({
    model: modelPath,
    port: 0,
    ctxSize: options.contextSize ?? 2048,
    threads: options.threads,
    restart: false,
    extraArgs: ['--embedding'],
  })
  return new ServerEmbedder(server.url, options.timeoutMs ?? 120_000, server)
}
