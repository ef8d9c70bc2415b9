import type {Finding} from '../detect/finding.js'
import {renderMessages, type ChatMessage, type TrajectoryTurn} from '../prompt/render.js'
import type {EngineProposal, EngineSession, Observation, TokenUsage} from './engine.js'

/** How one completion is decoded. */
export interface CompleteOptions {
  /**
   * A GBNF grammar the text must match instead of the step grammar, or null for free text (the
   * answers of a question file). Undefined: the step grammar of the audit.
   */
  grammar?: string | null
}

/** What a model engine must provide: one completion of the rendered conversation. */
export interface Completer {
  complete(
    messages: ChatMessage[],
    options?: CompleteOptions,
  ): Promise<{text: string; usage: TokenUsage; hitTokenLimit: boolean}>
}

/** Turns a model's raw text into a step, or says why it is not one. */
export function parseStepText(text: string, hitTokenLimit: boolean): Pick<EngineProposal, 'step' | 'parseError'> {
  try {
    return {step: JSON.parse(text)}
  } catch (error) {
    if (hitTokenLimit)
      return {
        step: undefined,
        parseError:
          'the output was cut off at the token limit before the JSON step was complete; answer with a shorter thought',
      }
    return {
      step: undefined,
      parseError: `the output is not valid JSON (${(error as Error).message}); answer with exactly one JSON object`,
    }
  }
}

/**
 * One finding's conversation with a model: it keeps the trajectory, renders it with the one
 * renderer each turn, and hands the model's raw text back as the assistant turn, so the rendered
 * prefix of the next turn matches what the model has already evaluated.
 */
export class ModelEngineSession implements EngineSession {
  private readonly turns: TrajectoryTurn[] = []
  private readonly finding: Finding
  private readonly completer: Completer

  constructor(finding: Finding, completer: Completer) {
    this.finding = finding
    this.completer = completer
  }

  async next(observation: Observation | undefined): Promise<EngineProposal> {
    if (observation && this.turns.length > 0) this.turns[this.turns.length - 1].observation = observation
    const {text, usage, hitTokenLimit} = await this.completer.complete(renderMessages(this.finding, this.turns))
    const parsed = parseStepText(text, hitTokenLimit)
    this.turns.push({step: parsed.step, raw: text, observation: {ok: false, error: 'no observation yet'}})
    return {...parsed, raw: text, usage}
  }
}
