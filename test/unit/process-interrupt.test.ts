import {describe, expect, it} from 'vitest'

import {InterruptedError, interruptScope} from '../../src/process/interrupt.js'

describe('interruptScope', () => {
  it('aborts on the first signal with an InterruptedError carrying the exit code', () => {
    using scope = interruptScope(['SIGUSR2'])
    process.emit('SIGUSR2')
    expect(scope.signal.aborted).toBe(true)
    const reason = scope.signal.reason as InterruptedError
    expect(reason).toBeInstanceOf(InterruptedError)
    expect(reason.signalName).toBe('SIGUSR2')
  })

  it('maps SIGINT to exit code 130 and SIGTERM to 143', () => {
    expect(new InterruptedError('SIGINT').exitCode).toBe(130)
    expect(new InterruptedError('SIGTERM').exitCode).toBe(143)
  })

  // Regression: the handler used to remove itself at the first signal; execa's exit hook
  // (signal-exit) then saw no other listener and killed the process before `serve` stopped
  // llama-server and printed its last line.
  it('keeps its handler installed after the first signal, until disposed', () => {
    const before = process.listeners('SIGUSR2').length
    const scope = interruptScope(['SIGUSR2'])
    process.emit('SIGUSR2')
    expect(process.listeners('SIGUSR2').length).toBe(before + 1)
    scope[Symbol.dispose]()
    expect(process.listeners('SIGUSR2').length).toBe(before)
  })
})
