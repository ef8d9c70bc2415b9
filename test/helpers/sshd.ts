import {existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {createConnection} from 'node:net'
import {userInfo} from 'node:os'
import {dirname, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {runProcess} from '../../src/process/run-process.js'
import {spawnLongRunning, type LongRunningProcess} from '../../src/process/long-running.js'
import {temporaryDirectory} from './cli.js'

/*
 * A real OpenSSH server on loopback for tests: Debian's sshd with a temporary host key, a
 * temporary user key, a random high port, running as the current user (who is the only one it
 * can log in). Its PATH is set (SetEnv) so that sessions find this test's node and the fixture
 * nvidia-smi. Nothing listens beyond 127.0.0.1.
 */

export const SSHD_PATHS = ['/usr/sbin/sshd', '/usr/local/sbin/sshd']

/** The sshd binary, or undefined when openssh-server is not installed. */
export function findSshd(): string | undefined {
  return SSHD_PATHS.find((path) => existsSync(path))
}

export interface TestSshServer extends AsyncDisposable {
  port: number
  user: string
  /** `user@127.0.0.1` */
  destination: string
  identity: string
  knownHosts: string
  /** A known_hosts file holding another key for this host (a "changed" host key). */
  wrongKnownHosts: string
  /** An empty known_hosts file. */
  emptyKnownHosts: string
  directory: string
  process: LongRunningProcess
  /** Kills every open SSH connection (the sshd processes serving them); the server keeps listening. */
  dropConnections(): number
  stop(): Promise<void>
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({host: '127.0.0.1', port})
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

function childrenOf(pid: number): number[] {
  const children: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // Fields after the command name (which may hold spaces) start after the last ')'.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (parent === pid) children.push(Number(entry))
    } catch {
      // The process ended meanwhile.
    }
  }
  return children
}

/** Starts sshd; `pathDirs` go first on the sessions' PATH. */
export async function startTestSshServer(options: {pathDirs?: string[]} = {}): Promise<TestSshServer> {
  const sshd = findSshd()
  if (!sshd) throw new Error('sshd is not installed: apt-get install -y openssh-server')
  const directory = temporaryDirectory('invagent-sshd-')
  const user = userInfo().username
  await runProcess('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'invagent-test-host',
    '-f',
    join(directory, 'host_key'),
  ])
  await runProcess('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'invagent-test-user',
    '-f',
    join(directory, 'user_key'),
  ])
  await runProcess('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'invagent-test-other',
    '-f',
    join(directory, 'other_host_key'),
  ])
  writeFileSync(join(directory, 'authorized_keys'), readFileSync(join(directory, 'user_key.pub')))
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', {recursive: true, mode: 0o755}) // privilege separation folder, as the service would make it
  const path = [...(options.pathDirs ?? []), dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':')

  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000)
    const config = join(directory, 'sshd_config')
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(directory, 'host_key')}`,
        `AuthorizedKeysFile ${join(directory, 'authorized_keys')}`,
        `PidFile ${join(directory, 'sshd.pid')}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'PermitRootLogin prohibit-password',
        `AllowUsers ${user}`,
        'Subsystem sftp internal-sftp',
        `SetEnv PATH=${path}`,
        'MaxStartups 50',
        'MaxSessions 50',
        '',
      ].join('\n'),
    )
    const server = spawnLongRunning(sshd, ['-D', '-e', '-f', config])
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && server.running && !(await portOpen(port))) await sleep(50)
    if (!server.running || !(await portOpen(port))) {
      await server.stop()
      if (attempt < 5 && /Address already in use|Cannot bind/i.test(server.stderrTail())) continue
      throw new Error(`sshd did not start:\n${server.stderrTail()}`)
    }
    const hostKey = readFileSync(join(directory, 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ')
    const otherKey = readFileSync(join(directory, 'other_host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ')
    writeFileSync(join(directory, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey}\n`)
    writeFileSync(join(directory, 'wrong_known_hosts'), `[127.0.0.1]:${port} ${otherKey}\n`)
    writeFileSync(join(directory, 'empty_known_hosts'), '')
    const stop = async () => {
      for (const child of childrenOf(server.pid!)) {
        try {
          process.kill(child, 'SIGKILL')
        } catch {
          // gone
        }
      }
      await server.stop()
    }
    return {
      port,
      user,
      destination: `${user}@127.0.0.1`,
      identity: join(directory, 'user_key'),
      knownHosts: join(directory, 'known_hosts'),
      wrongKnownHosts: join(directory, 'wrong_known_hosts'),
      emptyKnownHosts: join(directory, 'empty_known_hosts'),
      directory,
      process: server,
      dropConnections() {
        const children = childrenOf(server.pid!)
        for (const child of children) {
          try {
            process.kill(child, 'SIGKILL')
          } catch {
            // gone
          }
        }
        return children.length
      },
      stop,
      [Symbol.asyncDispose]: stop,
    }
  }
}
