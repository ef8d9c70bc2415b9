import {closeSync, openSync, readFileSync, rmSync, writeSync} from 'node:fs'
import {hostname} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'

import {ConfigError} from '../errors.js'

interface LockOwner {
  pid: number
  host: string
  startedAt: string
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function readOwner(path: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockOwner
  } catch {
    return undefined
  }
}

export interface BuildLock {
  release(): void
}

export interface AcquireLockOptions {
  signal?: AbortSignal
  /** Called once when another process holds the lock and this one starts waiting. */
  onWait?: (owner: LockOwner) => void
  /** Give up after this long (default one hour: a build takes minutes). */
  timeoutMs?: number
  pollMs?: number
}

/**
 * An exclusive lock file (created with O_EXCL) so two builds of one key never write the same
 * folder. A lock left by a process that no longer exists on this host is taken over; a live
 * owner is waited for.
 */
export async function acquireBuildLock(path: string, options: AcquireLockOptions = {}): Promise<BuildLock> {
  const deadline = Date.now() + (options.timeoutMs ?? 60 * 60 * 1000)
  let announced = false
  for (;;) {
    options.signal?.throwIfAborted()
    try {
      const fd = openSync(path, 'wx')
      const owner: LockOwner = {pid: process.pid, host: hostname(), startedAt: new Date().toISOString()}
      writeSync(fd, JSON.stringify(owner))
      closeSync(fd)
      let released = false
      return {
        release() {
          if (released) return
          released = true
          if (readOwner(path)?.pid === process.pid) rmSync(path, {force: true})
        },
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const owner = readOwner(path)
    if (owner === undefined || (owner.host === hostname() && !isProcessAlive(owner.pid))) {
      // Stale: its owner died (or it was half written); take it over.
      rmSync(path, {force: true})
      continue
    }
    if (!announced) {
      announced = true
      options.onWait?.(owner)
    }
    if (Date.now() > deadline) {
      throw new ConfigError(
        `another build (pid ${owner.pid} on ${owner.host}, since ${owner.startedAt}) still holds ${path}`,
        {
          suggestions: ['Wait for it to finish, or delete the lock file if that process is gone.'],
        },
      )
    }
    try {
      await sleep(options.pollMs ?? 1000, undefined, {signal: options.signal})
    } catch (error) {
      // timers/promises rejects with a generic AbortError: pass on the signal's own reason (e.g. Ctrl+C).
      throw options.signal?.aborted ? options.signal.reason : error
    }
  }
}
