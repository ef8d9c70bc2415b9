/**
 * The small, closed set of errors invagent raises. Each carries a stable code, the next steps
 * for the user, and an exit code; the base command maps them to oclif errors. Library code never
 * calls process.exit().
 */
export class InvagentError extends Error {
  readonly code: string
  readonly suggestions: string[]
  readonly exitCode: number

  constructor(
    message: string,
    options: {code?: string; suggestions?: string[]; cause?: unknown; exitCode?: number} = {},
  ) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = new.target.name
    this.code = options.code ?? 'INVAGENT_ERROR'
    this.suggestions = options.suggestions ?? []
    this.exitCode = options.exitCode ?? 1
  }
}

/** Bad input from the person at the keyboard: flags, arguments, files they pointed at. */
export class UserError extends InvagentError {
  constructor(message: string, options: {code?: string; suggestions?: string[]; cause?: unknown} = {}) {
    super(message, {code: 'USER_ERROR', exitCode: 2, ...options})
  }
}

/** The environment or configuration is not usable: a missing, corrupt or foreign database, an unwritable path. */
export class ConfigError extends InvagentError {
  constructor(message: string, options: {code?: string; suggestions?: string[]; cause?: unknown} = {}) {
    super(message, {code: 'CONFIG_ERROR', exitCode: 3, ...options})
  }
}

/** A child process (llama-server, cmake, ssh, …) failed. */
export class ExternalToolError extends InvagentError {
  readonly command: string
  readonly processExitCode: number | undefined
  readonly stderrTail: string

  constructor(
    message: string,
    details: {command: string; exitCode?: number; stderrTail?: string; suggestions?: string[]; cause?: unknown},
  ) {
    super(message, {code: 'EXTERNAL_TOOL_ERROR', exitCode: 4, suggestions: details.suggestions, cause: details.cause})
    this.command = details.command
    this.processExitCode = details.exitCode
    this.stderrTail = details.stderrTail ?? ''
  }
}

/** The model (or an engine standing in for it) did something it must not: recorded, never thrown through the loop. */
export class ModelBehaviorError extends InvagentError {
  constructor(message: string, options: {code?: string; suggestions?: string[]; cause?: unknown} = {}) {
    super(message, {code: 'MODEL_BEHAVIOR_ERROR', exitCode: 5, ...options})
  }
}

/** Edit distance, for "did you mean" suggestions. */
export function levenshtein(a: string, b: string): number {
  const previous = Array.from({length: b.length + 1}, (_, index) => index)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0]
    previous[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j]
      previous[j] = Math.min(previous[j] + 1, previous[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1))
      diagonal = above
    }
  }
  return previous[b.length]
}

/** The closest candidate within a small edit distance, or undefined. */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(input.length / 3)) + 1
  for (const candidate of candidates) {
    const distance = levenshtein(input.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}
