import {InvagentError} from '../errors.js'

/** Thrown (as an abort reason) when the user pressed Ctrl+C or the process got SIGTERM. */
export class InterruptedError extends InvagentError {
  readonly signalName: NodeJS.Signals

  constructor(signalName: NodeJS.Signals) {
    super(`interrupted by ${signalName}`, {code: 'INTERRUPTED', exitCode: signalName === 'SIGINT' ? 130 : 143})
    this.signalName = signalName
  }
}

export interface InterruptScope extends Disposable {
  /** Aborted on the first SIGINT or SIGTERM, with an InterruptedError as its reason. */
  readonly signal: AbortSignal
}

/**
 * Turns the first Ctrl+C / SIGTERM into an AbortSignal so that long work can stop its children
 * and clean up. The handlers stay installed until the scope is disposed: removing them at the
 * first signal would let execa's exit hook (signal-exit, which kills the process when no one else
 * listens) end the process before the cleanup ran. A second signal means "now": the handlers are
 * removed and the signal raised again, so the process dies as it would have without them.
 */
export function interruptScope(signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): InterruptScope {
  const controller = new AbortController()
  const handlers = new Map<NodeJS.Signals, () => void>()
  const remove = () => {
    for (const [name, handler] of handlers) process.removeListener(name, handler)
    handlers.clear()
  }
  for (const name of signals) {
    const handler = () => {
      if (!controller.signal.aborted) {
        controller.abort(new InterruptedError(name))
        return
      }
      remove()
      process.kill(process.pid, name)
    }
    handlers.set(name, handler)
    process.on(name, handler)
  }
  return {signal: controller.signal, [Symbol.dispose]: remove}
}
