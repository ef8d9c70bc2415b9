import {copyFileSync, existsSync, mkdirSync, statSync} from 'node:fs'
import {dirname, isAbsolute, resolve} from 'node:path'

import {ConfigError, ExternalToolError, UserError} from '../errors.js'
import {quoteArgument, runProcess, type LineListener, type ProcessResult} from '../process/run-process.js'

/*
 * How a training job reaches the machine it runs on: a shell there, and files to and from it.
 * Over SSH every command is `ssh … bash -c '<script>'` and every file goes through sftp (whose
 * `put -a` / `reget` resume a partial transfer); on this machine the same scripts run in a local
 * bash. Host keys are always checked: against the user's known_hosts (or --known-hosts), with
 * StrictHostKeyChecking=yes, or accept-new when the user opted in; never "no".
 */

export interface ExecOptions {
  onLine?: LineListener
  signal?: AbortSignal
  timeoutMs?: number
  /** Exit codes that are not failures (default 0 only). */
  okExitCodes?: readonly number[]
}

export interface TransferOptions {
  signal?: AbortSignal
}

export interface JobTransport {
  readonly kind: 'ssh' | 'local'
  /** user@host:port, or "this machine". */
  readonly description: string
  /** Runs a bash script there, from the login folder (home over SSH, the jobs folder locally). */
  exec(script: string, options?: ExecOptions): Promise<ProcessResult>
  /** Copies a local file there; a partial earlier upload of it is continued. */
  upload(localFile: string, remotePath: string, options?: TransferOptions): Promise<void>
  /** Copies a file from there, continuing a partial local copy (`localFile` as it stands). */
  download(remotePath: string, localFile: string, options?: TransferOptions): Promise<void>
  /** Copies a folder from there (recursively), into `localDir` (created). */
  downloadDirectory(remoteDir: string, localDir: string, options?: TransferOptions): Promise<void>
}

/** Where an SSH job runs. */
export interface SshTarget {
  /** `user@host`, `host`, or a Host alias of ~/.ssh/config. */
  destination: string
  port?: number
  /** Private key file (ssh -i). Only its path is ever recorded. */
  identity?: string
  /** A known_hosts file to check the host key against, instead of ~/.ssh/known_hosts. */
  knownHosts?: string
  /** Trust and record the host's key on first contact (StrictHostKeyChecking=accept-new); a changed key still fails. */
  acceptNewHostKey?: boolean
}

/** Rejects what ssh would read as an option, or what cannot be a host. */
export function checkSshTarget(target: SshTarget): void {
  if (!/^[A-Za-z0-9_.@%:[\]-]+$/.test(target.destination) || target.destination.startsWith('-')) {
    throw new UserError(
      `--host ${JSON.stringify(target.destination)}: expected user@host or host (letters, digits, ".", "-", "_", "@").`,
      {code: 'SSH_HOST_INVALID'},
    )
  }
  if (target.identity !== undefined && !existsSync(target.identity)) {
    throw new UserError(`--identity ${target.identity}: no such file.`, {
      code: 'SSH_IDENTITY_MISSING',
      suggestions: ['Give the private key file that the GPU host accepts (ssh -i).'],
    })
  }
  if (target.knownHosts !== undefined && !existsSync(target.knownHosts) && !target.acceptNewHostKey) {
    throw new UserError(`--known-hosts ${target.knownHosts}: no such file, so no host key can be checked.`, {
      code: 'SSH_KNOWN_HOSTS_MISSING',
      suggestions: [
        "Create it with the host's key (ssh-keyscan, after checking the fingerprint with the provider), or add --accept-new-host-key.",
      ],
    })
  }
}

/** The options every ssh and sftp call shares. */
export function sshOptions(target: SshTarget): string[] {
  const options = [
    '-o',
    'BatchMode=yes',
    '-o',
    `StrictHostKeyChecking=${target.acceptNewHostKey ? 'accept-new' : 'yes'}`,
    '-o',
    'ConnectTimeout=20',
    // A dead link is noticed within a minute rather than never.
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'ServerAliveCountMax=4',
    '-o',
    'LogLevel=ERROR',
  ]
  if (target.knownHosts !== undefined) options.push('-o', `UserKnownHostsFile=${resolve(target.knownHosts)}`)
  if (target.identity !== undefined) options.push('-o', 'IdentitiesOnly=yes', '-i', resolve(target.identity))
  return options
}

export function describeTarget(target: SshTarget): string {
  return `${target.destination}${target.port !== undefined ? `:${target.port}` : ''}`
}

/** Turns ssh's exit status 255 (its own failure, not the remote command's) into an error that says what to do. */
export function sshFailure(error: ExternalToolError, target: SshTarget): ExternalToolError | ConfigError {
  if (error.processExitCode !== 255) return error
  const text = error.stderrTail
  const where = describeTarget(target)
  const keyscan = `ssh-keyscan ${target.port !== undefined ? `-p ${target.port} ` : ''}${target.destination.replace(/^.*@/, '')}`
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED/.test(text)) {
    return new ConfigError(
      `the host key of ${where} has CHANGED since it was recorded in known_hosts: someone may be intercepting the connection, or the machine was replaced.`,
      {
        code: 'SSH_HOST_KEY_CHANGED',
        suggestions: [
          "Ask the provider for the new key's fingerprint; only if it matches, remove the old entry with `ssh-keygen -R HOST` and try again.",
        ],
        cause: error,
      },
    )
  }
  if (/Host key verification failed|No .* host key is known|host key .* not known/i.test(text)) {
    return new ConfigError(
      `the host key of ${where} is not in known_hosts, so the connection was refused (keys are always checked).`,
      {
        code: 'SSH_HOST_KEY_UNKNOWN',
        suggestions: [
          `Check the fingerprint the provider shows against \`${keyscan} | ssh-keygen -lf -\`, then append \`${keyscan}\`'s output to ~/.ssh/known_hosts (or a file given with --known-hosts).`,
          'Or pass --accept-new-host-key to record the key on first contact (a later change is still refused).',
        ],
        cause: error,
      },
    )
  }
  if (/Permission denied|Too many authentication failures/i.test(text)) {
    return new ConfigError(`${where} refused the login: ${text.split('\n').at(-1)}`, {
      code: 'SSH_AUTH_FAILED',
      suggestions: [
        'Pass the key the host accepts with --identity KEY, or load it into ssh-agent.',
        `Check by hand: ssh ${target.port !== undefined ? `-p ${target.port} ` : ''}${target.destination} true`,
      ],
      cause: error,
    })
  }
  if (
    /Could not resolve hostname|Connection refused|Connection timed out|No route to host|Network is unreachable|Operation timed out/i.test(
      text,
    )
  ) {
    return new ExternalToolError(`cannot reach ${where}: ${text.split('\n').at(-1)}`, {
      command: error.command,
      exitCode: 255,
      stderrTail: text,
      suggestions: [
        'Check the host, --port and that the machine is running; then run the same command again (or `invagent train --resume JOB`).',
      ],
      cause: error,
    })
  }
  return new ExternalToolError(
    `the connection to ${where} was lost: ${text.split('\n').at(-1) || `ssh exited with 255`}`,
    {
      command: error.command,
      exitCode: 255,
      stderrTail: text,
      suggestions: ['The job goes on running on the host: reattach with `invagent train --resume JOB`.'],
      cause: error,
    },
  )
}

/** Whether an error means the SSH connection (not the remote command) failed. */
export function isConnectionFailure(error: unknown): boolean {
  return error instanceof ExternalToolError && error.processExitCode === 255
}

function sftpQuote(path: string): string {
  if (/["\n\r]/.test(path))
    throw new UserError(
      `cannot transfer ${JSON.stringify(path)}: paths with double quotes or newlines are not supported.`,
    )
  return `"${path.replaceAll('\\', '\\\\')}"`
}

export class SshTransport implements JobTransport {
  readonly kind = 'ssh'
  readonly description: string
  readonly target: SshTarget

  constructor(target: SshTarget) {
    checkSshTarget(target)
    this.target = target
    this.description = describeTarget(target)
  }

  private async ssh(args: string[], options: ExecOptions & {input?: string} = {}): Promise<ProcessResult> {
    try {
      return await runProcess(
        'ssh',
        [
          ...sshOptions(this.target),
          ...(this.target.port !== undefined ? ['-p', String(this.target.port)] : []),
          '-T',
          ...args,
        ],
        {
          signal: options.signal,
          timeoutMs: options.timeoutMs,
          onLine: options.onLine,
          input: options.input,
          okExitCodes: options.okExitCodes,
        },
      )
    } catch (error) {
      throw error instanceof ExternalToolError ? sshFailure(error, this.target) : error
    }
  }

  async exec(script: string, options: ExecOptions = {}): Promise<ProcessResult> {
    // The login shell may be anything; bash runs the script whatever it is.
    return this.ssh([this.target.destination, `bash -c ${quoteArgument(script)}`], options)
  }

  private async sftp(batch: string[], options: TransferOptions = {}): Promise<void> {
    try {
      await runProcess(
        'sftp',
        [
          ...sshOptions(this.target),
          ...(this.target.port !== undefined ? ['-P', String(this.target.port)] : []),
          '-b',
          '-',
          this.target.destination,
        ],
        {
          input: `${batch.join('\n')}\n`,
          signal: options.signal,
        },
      )
    } catch (error) {
      throw error instanceof ExternalToolError ? sshFailure(error, this.target) : error
    }
  }

  async upload(localFile: string, remotePath: string, options: TransferOptions = {}): Promise<void> {
    const size = statSync(localFile).size
    // One round trip: make the folder, and see how much of the file is already there.
    const folder = remotePath.includes('/') ? remotePath.slice(0, remotePath.lastIndexOf('/')) || '/' : '.'
    const found = (
      await this.exec(
        `mkdir -p ${quoteArgument(folder)} && { stat -c %s ${quoteArgument(remotePath)} 2>/dev/null || echo none; }`,
        options,
      )
    ).stdout.trim()
    const remoteSize = /^\d+$/.test(found) ? Number(found) : undefined
    // put -a continues a partial file but fails when there is none; a larger one is a different file.
    const resume = remoteSize !== undefined && remoteSize <= size
    await this.sftp([`put ${resume ? '-a ' : ''}${sftpQuote(resolve(localFile))} ${sftpQuote(remotePath)}`], options)
  }

  async download(remotePath: string, localFile: string, options: TransferOptions = {}): Promise<void> {
    mkdirSync(dirname(resolve(localFile)), {recursive: true})
    await this.sftp([`reget ${sftpQuote(remotePath)} ${sftpQuote(resolve(localFile))}`], options)
  }

  async downloadDirectory(remoteDir: string, localDir: string, options: TransferOptions = {}): Promise<void> {
    mkdirSync(resolve(localDir), {recursive: true})
    await this.sftp([`get -a -r ${sftpQuote(`${remoteDir}/.`)} ${sftpQuote(resolve(localDir))}`], options)
  }
}

/** Runs the job's scripts in bash on this machine; "remote" paths are relative to `baseDir`. */
export class LocalTransport implements JobTransport {
  readonly kind = 'local'
  readonly description = 'this machine'
  readonly baseDir: string

  constructor(baseDir: string) {
    this.baseDir = resolve(baseDir)
  }

  private path(remotePath: string): string {
    return isAbsolute(remotePath) ? remotePath : resolve(this.baseDir, remotePath)
  }

  async exec(script: string, options: ExecOptions = {}): Promise<ProcessResult> {
    mkdirSync(this.baseDir, {recursive: true})
    return runProcess('bash', ['-c', script], {
      cwd: this.baseDir,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
      onLine: options.onLine,
      okExitCodes: options.okExitCodes,
    })
  }

  async upload(localFile: string, remotePath: string): Promise<void> {
    const target = this.path(remotePath)
    mkdirSync(dirname(target), {recursive: true})
    copyFileSync(localFile, target)
  }

  async download(remotePath: string, localFile: string): Promise<void> {
    mkdirSync(dirname(resolve(localFile)), {recursive: true})
    copyFileSync(this.path(remotePath), localFile)
  }

  async downloadDirectory(remoteDir: string, localDir: string, options: TransferOptions = {}): Promise<void> {
    mkdirSync(resolve(localDir), {recursive: true})
    await runProcess('cp', ['-R', `${this.path(remoteDir)}/.`, resolve(localDir)], {signal: options.signal})
  }
}
