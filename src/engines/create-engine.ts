import {UserError} from '../errors.js'
import {systemPrompt} from '../prompt/render.js'
import {sha256Hex} from '../util/canonical-json.js'
import type {Engine, EngineProposal, EngineSession} from './engine.js'
import {RulesEngine} from './rules-engine.js'

export const ENGINES = ['rules', 'embedded', 'server'] as const
export type EngineName = (typeof ENGINES)[number]

export interface EngineOptions {
  engine: string
  /** GGUF path for the embedded engine. */
  model?: string
  /** Endpoint for the server engine. */
  url?: string
  threads?: number
  contextSize?: number
  maxTokens?: number
  seed?: number
  /** Waits this long before every step: stands in for a slow model in load tests and demos. */
  stepDelayMs?: number
  /** Bearer token for the server engine; INVAGENT_API_KEY when not given. */
  apiKey?: string
}

/** What made a plan: recorded in it so that a plan can be traced to an engine, a model and a prompt. */
export interface EngineIdentity {
  name: string
  /** The model's registry name and sha256 when it has a manifest; null for engines without a model. */
  model: {name: string | null; path: string; sha256: string | null} | null
  /** sha256 of the system prompt the engine is given (the tool catalogue included). */
  promptVersion: string
}

let promptVersion: string | undefined

/** The version of the prompt: a digest of the rendered system prompt, computed once. */
export function currentPromptVersion(): string {
  promptVersion ??= sha256Hex(systemPrompt()).slice(0, 16)
  return promptVersion
}

export interface CreatedEngine {
  engine: Engine
  identity: EngineIdentity
}

/** Creates the engine that decides the steps; the model engines are loaded only when asked for. */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  return (await createEngineWithIdentity(options)).engine
}

export async function createEngineWithIdentity(options: EngineOptions): Promise<CreatedEngine> {
  const created = await create(options)
  if (options.stepDelayMs && options.stepDelayMs > 0) created.engine = delayed(created.engine, options.stepDelayMs)
  return created
}

async function create(options: EngineOptions): Promise<CreatedEngine> {
  switch (options.engine) {
    case 'rules':
      return {engine: new RulesEngine(), identity: {name: 'rules', model: null, promptVersion: currentPromptVersion()}}
    case 'embedded': {
      if (!options.model)
        throw new UserError('the embedded engine needs --model (a GGUF path or a name from `invagent models list`)')
      const {resolveModel} = await import('../models/registry.js')
      const {EmbeddedEngine} = await import('./embedded-engine.js')
      const resolved = resolveModel(options.model)
      const engine = await EmbeddedEngine.load({
        modelPath: resolved.path,
        threads: options.threads,
        contextSize: options.contextSize,
        maxTokens: options.maxTokens,
        seed: options.seed,
      })
      const model = {name: resolved.name, path: resolved.path, sha256: resolved.manifest?.sha256 ?? null}
      return {engine, identity: {name: 'embedded', model, promptVersion: currentPromptVersion()}}
    }
    case 'server': {
      if (!options.url)
        throw new UserError(
          'the server engine needs --url (e.g. http://127.0.0.1:8080, as printed by `invagent serve`)',
        )
      const {ServerEngine} = await import('./server-engine.js')
      const engine = await ServerEngine.connect({
        url: options.url,
        maxTokens: options.maxTokens,
        seed: options.seed,
        apiKey: options.apiKey ?? process.env.INVAGENT_API_KEY,
      })
      return {
        engine,
        identity: {
          name: 'server',
          model: {name: null, path: options.url, sha256: null},
          promptVersion: currentPromptVersion(),
        },
      }
    }
  }
  throw new UserError(`unknown engine "${options.engine}"`, {suggestions: [`Engines: ${ENGINES.join(', ')}`]})
}

/** The same engine, waiting `delayMs` before each step. */
function delayed(inner: Engine, delayMs: number): Engine {
  return {
    name: inner.name,
    start(finding): EngineSession {
      const session = inner.start(finding)
      return {
        async next(observation): Promise<EngineProposal> {
          await new Promise((resolve) => setTimeout(resolve, delayMs))
          return session.next(observation)
        },
      }
    },
    close: inner.close ? () => inner.close!() : undefined,
  }
}
