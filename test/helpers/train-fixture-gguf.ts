import type {TinyGgufOptions} from './tiny-gguf.js'

/** The GGUF the FIXTURE trainer's convert stage writes, so a test can rebuild it (to know its token ids). */
export function fixtureTrainerGguf(name = 'invagent-tiny-quantizable'): TinyGgufOptions {
  return {preset: 'quantizable', tensorType: 'f16', seed: 5, name}
}
