import {createServer} from 'node:net'

import {UserError} from '../errors.js'

/** Loopback hosts: the only ones invagent binds to unless told otherwise. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/**
 * Checks that `port` can be bound on `host` (and with port 0 picks a free one), so that a port
 * already taken fails with a clear message instead of a health check answered by someone else.
 * The port is released before this returns; another process could take it in between, which the
 * caller detects because its own child then exits.
 */
export async function reservePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(
          new UserError(`port ${port} on ${host} is already in use`, {
            code: 'PORT_IN_USE',
            suggestions: ['Pick another one with --port, or stop what is listening there.'],
          }),
        )
      } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        reject(
          new UserError(`cannot listen on ${host}: ${error.code}`, {
            suggestions: ['Use --host 127.0.0.1 (the default) or an address of this machine.'],
          }),
        )
      } else {
        reject(error)
      }
    })
    server.listen({host, port, exclusive: true}, () => {
      const address = server.address()
      const chosen = typeof address === 'object' && address ? address.port : port
      server.close(() => resolve(chosen))
    })
  })
}
