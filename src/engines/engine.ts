import type {Finding} from '../detect/finding.js'

/** One step the engine proposes: a thought and one tool call. Validated by the loop, never trusted. */
export interface ProposedStep {
  thought: string
  tool: string
  args: Record<string, unknown>
}

/** What the loop returns to the engine after a step: the tool's result, or an error it caused. */
export type Observation = {ok: true; result: unknown} | {ok: false; error: string}

export interface TokenUsage {
  promptTokens: number
  completionTokens: number
  /** Prompt tokens served from the cache (the reused prefix) rather than evaluated again. */
  cachedPromptTokens: number
}

export interface EngineProposal {
  /** The parsed step, or undefined when the engine's output could not even be parsed. */
  step: unknown
  /** The engine's raw text, when it produced text (models do; the playbook does not). */
  raw?: string
  /** Why the raw text is not a step at all (not JSON, cut off at the token limit). */
  parseError?: string
  usage?: TokenUsage
}

/** One finding's conversation with an engine. */
export interface EngineSession {
  /** The next step, given the observation of the previous one (undefined for the first). */
  next(observation: Observation | undefined): Promise<EngineProposal>
}

/** Who decides the next step: the rules playbook, a model, or a scripted/random engine in tests. */
export interface Engine {
  readonly name: string
  start(finding: Finding): EngineSession
  close?(): Promise<void>
}
