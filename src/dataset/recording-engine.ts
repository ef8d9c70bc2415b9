import type {Finding} from '../detect/finding.js'
import type {Engine, EngineProposal, EngineSession, Observation} from '../engines/engine.js'

/** What one finding's conversation was: each step proposed and the observation it received. */
export interface RecordedConversation {
  finding: Finding
  steps: unknown[]
  /** observations[i] answers steps[i]; the terminal step has none. */
  observations: Observation[]
}

/**
 * Wraps an engine and records its conversations as the loop runs them, so every observation in
 * a generated example is what a real tool execution returned.
 */
export class RecordingEngine implements Engine {
  readonly name: string
  readonly conversations = new Map<string, RecordedConversation>()
  private readonly inner: Engine

  constructor(inner: Engine) {
    this.inner = inner
    this.name = inner.name
  }

  start(finding: Finding): EngineSession {
    const record: RecordedConversation = {finding, steps: [], observations: []}
    this.conversations.set(finding.id, record)
    const session = this.inner.start(finding)
    return {
      async next(observation: Observation | undefined): Promise<EngineProposal> {
        if (observation !== undefined) record.observations.push(observation)
        const proposal = await session.next(observation)
        record.steps.push(proposal.step)
        return proposal
      },
    }
  }

  async close(): Promise<void> {
    await this.inner.close?.()
  }
}
