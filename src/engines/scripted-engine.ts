import type {Finding} from '../detect/finding.js'
import type {Engine, EngineProposal, EngineSession, Observation} from './engine.js'

/**
 * A deterministic engine for tests: for each finding, a script decides the next step from the
 * observations so far. A script may return any value (also malformed steps) or throw, which is
 * how tests reproduce a model that misbehaves or an engine that goes away.
 */
export type Script = (finding: Finding, observations: Observation[]) => unknown

export class ScriptedEngine implements Engine {
  readonly name = 'scripted'
  readonly script: Script

  constructor(script: Script) {
    this.script = script
  }

  start(finding: Finding): EngineSession {
    const observations: Observation[] = []
    return {
      next: async (observation): Promise<EngineProposal> => {
        if (observation) observations.push(observation)
        return {step: this.script(finding, observations)}
      },
    }
  }
}
