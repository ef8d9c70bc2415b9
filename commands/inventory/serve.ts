import {Flags, ux} from '@oclif/core'

import {InvagentCommand, dbFlag} from '../../src/cli/base-command.js'
import {
  DEFAULT_INVENTORY_HOST,
  DEFAULT_INVENTORY_PORT,
  serveInventoryUntilStopped,
  type InventoryServeStopped,
} from '../../src/inventory/http/serve-inventory.js'
import {resolveToken} from '../../src/inventory/http/token.js'
import {interruptScope} from '../../src/process/interrupt.js'

export default class InventoryServe extends InvagentCommand {
  static override summary = 'Serve an inventory over the REST contract (schemas/openapi.json).'
  static override description =
    `The reference server of the contract invagent's HTTP backend speaks: an endpoint per read tool, ` +
    'an idempotent POST per write tool, paged bulk reads for detection, bearer-token auth, GET ' +
    '/health. Loopback only unless a token is set (--token-file or INVAGENT_TOKEN). Every write is ' +
    'logged to stderr as one JSON line. Ctrl+C or SIGTERM stops it. With --json, stdout is JSON ' +
    'Lines: {"event":"ready",…} once listening, {"event":"stopped",…} at the end.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --inventory .invagent/inventory.db',
    '<%= config.bin %> <%= command.id %> --inventory postgres://postgres@127.0.0.1:5432/inventory --port 8765',
    '<%= config.bin %> <%= command.id %> --inventory erp.db --host 0.0.0.0 --port 8765 --token-file ~/.invagent-token',
  ]
  static override flags = {
    inventory: Flags.string({
      summary: 'The inventory to serve: a SQLite path or sqlite:PATH, or postgres://… (default: --db).',
    }),
    db: dbFlag,
    host: Flags.string({
      summary: 'Address to listen on (loopback by default; anything else needs a token).',
      default: DEFAULT_INVENTORY_HOST,
    }),
    port: Flags.integer({
      summary: 'Port to listen on (0 picks a free one).',
      default: DEFAULT_INVENTORY_PORT,
      min: 0,
      max: 65_535,
    }),
    'token-file': Flags.string({
      summary: 'File holding the bearer token clients must send (else INVAGENT_TOKEN; else no auth).',
    }),
  }

  async run(): Promise<InventoryServeStopped> {
    const {flags} = await this.parse(InventoryServe)
    using interrupt = interruptScope()
    const options = {
      inventory: flags.inventory ?? flags.db,
      host: flags.host,
      port: flags.port,
      token: resolveToken(flags['token-file']),
      signal: interrupt.signal,
    }
    const stopped = await serveInventoryUntilStopped(options, {
      ready: (line) => {
        if (this.jsonEnabled()) ux.stdout(JSON.stringify(line))
        else this.log(`Serving ${line.inventory} at ${line.url} (auth: ${line.auth}); Ctrl+C stops.`)
      },
      // The write log goes to stderr even under --json: it is the server's record of what changed.
      write: (entry) => ux.stderr(JSON.stringify(entry)),
    })
    this.notice(`Stopped after ${stopped.writes} write(s).`)
    return stopped
  }
}
