import {REMOTE_STAGES, type RemoteStageName} from './job-store.js'

/** What a progress task shows while its stage runs on the host. */
export interface StageDisplay {
  output?: string
  title?: string
}

interface Pending {
  promise: Promise<void>
  resolve: () => void
  reject: (error: unknown) => void
  settled: boolean
  display?: StageDisplay
}

/**
 * Connects the events streamed from the host to the progress tasks of the remote stages: each
 * task waits for its stage, which settles when run.sh reports it done, skipped or failed. Only the
 * earliest unsettled stage is ever failed, so no promise that nobody awaits is rejected.
 */
export class RemoteStageWaiter {
  private readonly stages = new Map<RemoteStageName, Pending>()

  constructor() {
    for (const stage of REMOTE_STAGES) {
      let resolve!: () => void
      let reject!: (error: unknown) => void
      const promise = new Promise<void>((done, fail) => {
        resolve = done
        reject = fail
      })
      // Handled from the start: a stage may fail before its task awaits it.
      promise.catch(() => {})
      this.stages.set(stage, {promise, resolve, reject, settled: false})
    }
  }

  /** Called by a stage's progress task: where to show output, then wait for the stage. */
  wait(stage: RemoteStageName, display?: StageDisplay): Promise<void> {
    const pending = this.stages.get(stage)!
    pending.display = display
    return pending.promise
  }

  show(stage: RemoteStageName, output: string): void {
    const display = this.stages.get(stage)?.display
    if (display) display.output = output
  }

  isSettled(stage: RemoteStageName): boolean {
    return this.stages.get(stage)!.settled
  }

  /** The stage and every one before it are done (run.sh runs them in order). */
  done(stage: RemoteStageName): void {
    for (const name of REMOTE_STAGES) {
      const pending = this.stages.get(name)!
      if (!pending.settled) {
        pending.settled = true
        pending.resolve()
      }
      if (name === stage) break
    }
  }

  /** Every stage is done (the job completed). */
  allDone(): void {
    this.done(REMOTE_STAGES.at(-1)!)
  }

  /** The earliest stage not yet settled, if any. */
  current(): RemoteStageName | undefined {
    return REMOTE_STAGES.find((stage) => !this.stages.get(stage)!.settled)
  }

  /** Fails the earliest unsettled stage (where the job stopped). */
  fail(error: unknown): void {
    const stage = this.current()
    if (stage === undefined) return
    const pending = this.stages.get(stage)!
    pending.settled = true
    pending.reject(error)
  }
}
