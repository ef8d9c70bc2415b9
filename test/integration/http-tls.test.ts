import {readFileSync} from 'node:fs'
import {createServer, type Server} from 'node:https'
import {join, resolve} from 'node:path'

import {execa} from 'execa'
import {afterAll, describe, expect, it} from 'vitest'

import {closeServer, inventoryRequestHandler, listen} from '../../src/inventory/http/server.js'
import {ServedSqliteInventory} from '../../src/inventory/http/served-inventory.js'
import {SqliteInventory} from '../../src/inventory/sqlite-backend.js'
import {generatedInventory, removeTemporaryInventories} from '../helpers/inventory-server.js'

/*
 * https through Node's own TLS: the reference handler behind node:https with a certificate made
 * here by openssl, and the HTTP backend (the built one, in a child process, because Node reads
 * NODE_EXTRA_CA_CERTS only at start-up) trusting it through NODE_EXTRA_CA_CERTS, or refusing it.
 */

const OPEN = resolve(import.meta.dirname, '../../dist/src/inventory/http/open-http-inventory.js')
const TOKEN = 'tls-test-token'

afterAll(() => removeTemporaryInventories())

const CLIENT = `
const {openHttpInventory} = await import(process.env.OPEN)
try {
  const inventory = await openHttpInventory({url: process.env.URL, mirrorPath: process.env.MIRROR, maxAttempts: 2})
  const part = await inventory.getPart('P-000001')
  const findings = await inventory.detect()
  inventory.close()
  console.log(JSON.stringify({part: part.id, findings: findings.map((finding) => finding.id)}))
} catch (error) {
  console.log(JSON.stringify({error: error.message, code: error.code, attempts: error.attempts}))
}
`

describe('HTTP backend over https', () => {
  it('speaks to a server whose CA it is given, and refuses one it cannot verify without retrying', async () => {
    const {dir, path} = generatedInventory()
    const key = join(dir, 'key.pem')
    const cert = join(dir, 'cert.pem')
    await execa('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ])
    const served = ServedSqliteInventory.open(path)
    const server: Server = createServer(
      {key: readFileSync(key), cert: readFileSync(cert)},
      inventoryRequestHandler({inventory: served, token: TOKEN}),
    )
    const url = (await listen(server, '127.0.0.1', 0)).replace('http:', 'https:')
    try {
      const run = async (extra: Record<string, string>, mirror: string) => {
        const env = {...process.env, OPEN, URL: url, MIRROR: join(dir, mirror), INVAGENT_TOKEN: TOKEN, ...extra}
        const result = await execa(process.execPath, ['--input-type=module', '-e', CLIENT], {env, reject: false})
        return JSON.parse(result.stdout.trim().split('\n').at(-1)!)
      }
      const direct = SqliteInventory.open(path, {readOnly: true})
      const expected = (await direct.detect()).map((finding) => finding.id)
      direct.close()
      expect(await run({NODE_EXTRA_CA_CERTS: cert}, 'trusted.db')).toEqual({part: 'P-000001', findings: expected})
      const refused = await run({NODE_EXTRA_CA_CERTS: ''}, 'untrusted.db')
      expect(refused).toMatchObject({code: 'HTTP_TLS', attempts: 1})
      expect(refused.error).toMatch(
        new RegExp(
          'TLS handshake failed \\((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|' +
            'UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
        ),
      )
    } finally {
      server.closeAllConnections()
      await closeServer(server)
      served.close()
    }
  })
})
