import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {DatabaseSync} from 'node:sqlite'

import {afterAll, afterEach, describe, expect, it} from 'vitest'

import {AuditLog} from '../../src/agent/audit-log.js'
import {runAudit} from '../../src/agent/audit.js'
import {RulesEngine} from '../../src/engines/rules-engine.js'
import {ConfigError} from '../../src/errors.js'
import {ErrorBody} from '../../src/inventory/http/contract.js'
import {sendWritesInOrder} from '../../src/inventory/http/apply-writes.js'
import {PartiallyAppliedError, type HttpInventory} from '../../src/inventory/http/http-backend.js'
import {HttpInventoryError} from '../../src/inventory/http/http-client.js'
import {openHttpInventory} from '../../src/inventory/http/open-http-inventory.js'
import {probeHttpInventory} from '../../src/inventory/http/probe.js'
import {isLoopbackHost, serveInventoryUntilStopped} from '../../src/inventory/http/serve-inventory.js'
import {UserError} from '../../src/errors.js'
import {
  connect,
  generatedInventory,
  removeTemporaryInventories,
  startServer,
  type RunningServer,
} from '../helpers/inventory-server.js'
import {countRows} from '../helpers/table-dump.js'

/*
 * Faults injected into the reference server (its test-only hook) while the HTTP backend works
 * against it over a real loopback socket. Each ends in a clear error or a correct retry, and the
 * inventory file underneath shows that nothing was applied twice.
 */

const PART = 'P-000001'
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(() => removeTemporaryInventories())

async function setup(options: {token?: string; client?: Parameters<typeof connect>[2]} = {}) {
  const {dir, path} = generatedInventory()
  const server = await startServer(path, {token: options.token})
  cleanups.push(() => server.stop())
  const http = await connect(server, dir, {token: options.token, ...options.client})
  cleanups.push(() => http.close())
  const onHand = () => countRows(path, 'SELECT on_hand AS n FROM parts WHERE id = ?', PART)
  const actions = () => countRows(path, 'SELECT count(*) AS n FROM agent_actions')
  return {dir, path, server, http, onHand, actions, startOnHand: onHand()}
}

/**
 * Three adjustments (+1, +2, +4) sent in order as one plan's writes are: any write applied twice
 * shows in the sum. The keys differ in their first characters, as the sha256 keys of the audit do
 * (an adjustment's id comes from them).
 */
async function adjustInOneUnit(http: HttpInventory, prefix: string): Promise<void> {
  const writes = [1, 2, 4].map((delta) => ({
    tool: 'adjust_quantity' as const,
    args: {part_id: PART, delta, reason: 'test'},
    idempotencyKey: `${delta}-${prefix}-key`,
  }))
  await sendWritesInOrder(http.client, writes, {runId: 'run', findingId: 'finding'})
}

/** A hook that answers the nth matching request (1-based) with an action, and lets the rest through. */
function onRequests(
  match: (request: {method: string; path: string; phase: string}) => boolean,
  actions: Record<number, ReturnType<NonNullable<RunningServer['faults']>>>,
) {
  let seen = 0
  return (request: {method: string; path: string; phase: 'before' | 'after-apply'}) => {
    if (!match(request)) return undefined
    seen++
    return actions[seen]
  }
}

const isWrite = (phase: string) => (request: {method: string; phase: string}) =>
  request.method === 'POST' && request.phase === phase

describe('HTTP backend under server faults', () => {
  it('waits out a burst of 429 with Retry-After, then reads', async () => {
    const {server, http} = await setup()
    server.faults = onRequests((request) => request.path.endsWith('/get_part'), {
      1: {kind: 'respond', status: 429, retryAfter: '1'},
      2: {kind: 'respond', status: 429, retryAfter: '1'},
    })
    const before = http.client.requests
    const started = performance.now()
    const part = await http.getPart(PART)
    expect(part.id).toBe(PART)
    expect(performance.now() - started).toBeGreaterThanOrEqual(1900)
    expect(http.client.requests - before).toBe(3)
  })

  it('retries writes rate-limited by 429 under their key: each applied once', async () => {
    const {server, http, onHand, startOnHand, actions} = await setup()
    server.faults = onRequests(isWrite('before'), {
      1: {kind: 'respond', status: 429, retryAfter: '0'},
      3: {kind: 'respond', status: 429, retryAfter: '0'},
    })
    await adjustInOneUnit(http, 'burst')
    expect(onHand()).toBe(startOnHand + 7)
    expect(actions()).toBe(3)
  })

  it('fails at once, saying so, when Retry-After asks for longer than allowed', async () => {
    const {server, http} = await setup({client: {maxRetryAfterMs: 5000}})
    server.faults = () => ({kind: 'respond', status: 429, retryAfter: '120'})
    const error = await http.getPart(PART).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(HttpInventoryError)
    expect((error as HttpInventoryError).code).toBe('HTTP_RATE_LIMITED')
    expect((error as Error).message).toMatch(/asks to wait 120 s/)
  })

  it('retries 502, 503 and 504 with backoff', async () => {
    const {server, http} = await setup()
    server.faults = onRequests((request) => request.path.endsWith('/get_transaction'), {
      1: {kind: 'respond', status: 502},
      2: {kind: 'respond', status: 503},
      3: {kind: 'respond', status: 504},
    })
    expect((await http.getTransaction('T-0000001')).id).toBe('T-0000001')
  })

  it('gives up after the last attempt with the status and the count', async () => {
    const {server, http} = await setup({client: {maxAttempts: 3}})
    server.faults = () => ({kind: 'respond', status: 503})
    await expect(http.getPart(PART)).rejects.toThrow(/still 503 after 3 attempts/)
  })

  it('does not retry a 500: the unit stops there and says which writes were applied', async () => {
    const {server, http, onHand, startOnHand, actions} = await setup()
    server.faults = onRequests(isWrite('before'), {
      2: {
        kind: 'respond',
        status: 500,
        body: JSON.stringify({error: {code: 'internal', message: 'ledger service down'}}),
      },
    })
    const error = await adjustInOneUnit(http, 'five-hundred').catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(PartiallyAppliedError)
    const partial = error as PartiallyAppliedError
    expect(partial.applied.map((write) => write.args.delta)).toEqual([1])
    expect(partial.failed?.args.delta).toBe(2)
    expect(partial.notSent.map((write) => write.args.delta)).toEqual([4])
    expect(partial.message).toMatch(
      new RegExp(
        '1 of 3 writes were applied to http://127\\.0\\.0\\.1:\\d+ before adjust_quantity ' +
          '.*"delta":2.* failed: .*500 internal: ledger service down',
      ),
    )
    expect(partial.message).toMatch(/Not sent: adjust_quantity .*"delta":4/)
    expect(onHand()).toBe(startOnHand + 1)
    expect(actions()).toBe(1)
  })

  it('retries a write that stalls past the timeout under its key: applied once', async () => {
    const {server, http, onHand, startOnHand, actions} = await setup({client: {timeoutMs: 300}})
    server.faults = onRequests(isWrite('before-apply'), {1: {kind: 'stall', ms: 1000}})
    await adjustInOneUnit(http, 'stall')
    // The stalled request is still handled once it wakes: it finds the key and answers the recorded result.
    await new Promise((resolve) => setTimeout(resolve, 1200))
    expect(server.writes.map((entry) => entry.outcome)).toEqual(['applied', 'applied', 'applied', 'replayed'])
    expect(onHand()).toBe(startOnHand + 7)
    expect(actions()).toBe(3)
  })

  const secondWriteFails =
    'escalates a plan whose second write fails with exactly the write that landed; a rerun finishes it once'
  it(secondWriteFails, async () => {
    const {server, http, dir, path} = await setup()
    // stuck_pending:T-0001966 is fixed by two writes (remap_transaction_part, then reprocess_transaction).
    server.faults = onRequests(isWrite('before'), {2: {kind: 'respond', status: 500}})
    const audit = (name: string) =>
      runAudit({
        backend: http,
        engine: new RulesEngine(),
        log: AuditLog.create(join(dir, 'logs'), name),
        dryRun: false,
        runId: name,
        rules: ['stuck_pending'],
      })
    const first = await audit('partial')
    const outcome = first.outcomes.find((each) => each.findingId === 'stuck_pending:T-0001966')!
    expect(outcome.outcome).toBe('escalated')
    expect(outcome.summary).toMatch(/applied only in part, and the inventory cannot roll back/)
    expect(outcome.summary).toMatch(/write 2 of 2 \(reprocess_transaction .*\) failed/)
    expect(outcome.summary).toMatch(/applied before that, and not rolled back .*: 1\. remap_transaction_part/)
    expect(outcome.actions.filter((action) => action.applied).map((action) => action.tool)).toEqual([
      'remap_transaction_part',
    ])
    const landed = `SELECT count(*) AS n FROM agent_actions WHERE finding_id = 'stuck_pending:T-0001966'`
    expect(countRows(path, landed)).toBe(1)

    server.faults = undefined
    const second = await audit('rerun')
    expect(second.outcomes.find((each) => each.findingId === 'stuck_pending:T-0001966')?.outcome).toBe('resolved')
    expect(countRows(path, `${landed} AND tool = 'remap_transaction_part'`)).toBe(1)
    expect(countRows(path, `SELECT count(*) AS n FROM transactions WHERE id = 'T-0001966' AND status = 'posted'`)).toBe(
      1,
    )
  })

  it('times out a stalled read, retries it, and answers', async () => {
    const {server, http} = await setup({client: {timeoutMs: 300}})
    server.faults = onRequests((request) => request.path.endsWith('/get_part'), {1: {kind: 'stall', ms: 1000}})
    expect((await http.getPart(PART)).id).toBe(PART)
  })

  it('reports a malformed body as a contract error, and a malformed write answer as maybe applied', async () => {
    const {server, http, onHand, startOnHand, actions} = await setup()
    server.faults = onRequests((request) => request.path.endsWith('/get_part'), {1: {kind: 'malformed'}})
    const read = await http.getPart(PART).catch((caught: unknown) => caught)
    expect(read).toBeInstanceOf(HttpInventoryError)
    expect((read as HttpInventoryError).code).toBe('HTTP_CONTRACT')
    expect((read as Error).message).toMatch(/expected a response in the contract's shape, found text that is not JSON/)

    server.faults = onRequests(isWrite('after-apply'), {2: {kind: 'malformed'}})
    const error = (await adjustInOneUnit(http, 'malformed').catch((caught: unknown) => caught)) as PartiallyAppliedError
    expect(error).toBeInstanceOf(PartiallyAppliedError)
    expect(error.failed).toMatchObject({maybeApplied: true})
    expect(error.message).toMatch(/may have been applied/)
    expect(onHand()).toBe(startOnHand + 3)
    // Running the same unit again sends the same keys: the two applied writes are not applied again.
    server.faults = undefined
    await adjustInOneUnit(http, 'malformed')
    expect(onHand()).toBe(startOnHand + 7)
    expect(actions()).toBe(3)
  })

  it('a rerun after a partial apply sends the same keys: the spent ones are replayed, not applied again', async () => {
    const {server, http, onHand, startOnHand, actions} = await setup()
    server.faults = onRequests(isWrite('before'), {3: {kind: 'respond', status: 500}})
    await expect(adjustInOneUnit(http, 'rerun')).rejects.toBeInstanceOf(PartiallyAppliedError)
    expect(onHand()).toBe(startOnHand + 3)
    server.faults = undefined
    await adjustInOneUnit(http, 'rerun')
    expect(onHand()).toBe(startOnHand + 7)
    expect(actions()).toBe(3)
  })

  const busyFile =
    'answers 503 with Retry-After while another writer holds the file, and the retried write applies once'
  it(busyFile, async () => {
    const {http, path, onHand, startOnHand, actions} = await setup({client: {timeoutMs: 15_000, maxAttempts: 5}})
    const other = new DatabaseSync(path)
    other.exec('BEGIN IMMEDIATE')
    // Longer than the server's busy timeout (5 s), so that the first attempt is answered 503.
    const release = setTimeout(() => other.exec('COMMIT'), 5500)
    try {
      const started = performance.now()
      const written = await http.sendWrite(
        'adjust_quantity',
        {part_id: PART, delta: 1, reason: 'test'},
        {runId: 'run', findingId: 'finding', idempotencyKey: 'busy-key-0001'},
      )
      expect(written.applied).toBe(true)
      expect(performance.now() - started).toBeGreaterThan(5000)
    } finally {
      clearTimeout(release)
      if (other.isTransaction) other.exec('COMMIT')
      other.close()
    }
    expect(onHand()).toBe(startOnHand + 1)
    expect(actions()).toBe(1)
    expect(http.client.requests).toBeGreaterThanOrEqual(3)
  })

  it('refuses a bulk page outside the contract, naming the field', async () => {
    const {server, http} = await setup()
    const page = {
      rows: [{id: 'P-1', sku: 'A', name: 'a', uom: 'EA', on_hand: 'many', reserved: 0, location: '', updated_at: 0}],
      next_cursor: null,
      watermark: 5,
      inventory_id: 'x',
    }
    server.faults = (request) =>
      request.path === '/v1/sync/parts' ? {kind: 'respond', status: 200, body: JSON.stringify(page)} : undefined
    const error = await http.detect().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(HttpInventoryError)
    expect((error as HttpInventoryError).code).toBe('HTTP_CONTRACT')
    expect((error as Error).message).toMatch(/must be integer at rows\.0\.on_hand/)
  })

  it('killed mid-apply: the error lists what was applied, and a rerun applies each write once', async () => {
    const {server, http, onHand, startOnHand, actions, path} = await setup({client: {maxAttempts: 3}})
    let seen = 0
    server.faults = (request) => {
      if (!isWrite('after-apply')(request) || ++seen !== 2) return undefined
      void server.crash()
      return {kind: 'crash'}
    }
    const error = (await adjustInOneUnit(http, 'killed').catch((caught: unknown) => caught)) as PartiallyAppliedError
    expect(error).toBeInstanceOf(PartiallyAppliedError)
    expect(error.applied.map((write) => write.args.delta)).toEqual([1])
    expect(error.failed).toMatchObject({args: {delta: 2}, maybeApplied: true})
    expect(error.notSent.map((write) => write.args.delta)).toEqual([4])
    expect(error.message).toMatch(/no answer \((ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed)/)
    // The second write did reach the inventory before the crash.
    expect(countRows(path, 'SELECT on_hand AS n FROM parts WHERE id = ?', PART)).toBe(startOnHand + 3)

    server.faults = undefined
    await server.restart()
    await adjustInOneUnit(http, 'killed')
    expect(onHand()).toBe(startOnHand + 7)
    expect(actions()).toBe(3)
    expect(server.writes.map((entry) => entry.outcome)).toEqual([
      'applied',
      'applied',
      'replayed',
      'replayed',
      'applied',
    ])
  })

  it('killed mid-apply and back within the retries: the retry gets the recorded answer', async () => {
    const {server, http, onHand, startOnHand, actions} = await setup({
      client: {maxAttempts: 10, baseDelayMs: 50, maxDelayMs: 200},
    })
    let seen = 0
    server.faults = (request) => {
      if (!isWrite('after-apply')(request) || ++seen !== 2) return undefined
      void server.crash().then(() => setTimeout(() => void server.restart(), 150))
      return {kind: 'crash'}
    }
    await adjustInOneUnit(http, 'back')
    expect(onHand()).toBe(startOnHand + 7)
    expect(actions()).toBe(3)
    expect(server.writes.map((entry) => entry.outcome)).toEqual(['applied', 'applied', 'replayed', 'applied'])
  })

  it('refuses a wrong or missing token with a clear error, and serves the right one', async () => {
    const {dir, server} = await setup({token: 'right-token-123'})
    for (const token of ['wrong-token', undefined]) {
      const error = await connect(server, dir, {token}).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as ConfigError).code).toBe('HTTP_UNAUTHORIZED')
      expect((error as Error).message).toMatch(/refused the token \(401\)/)
    }
    const health = await fetch(`${server.url}/health`)
    expect(health.status).toBe(200)
    // What doctor reports: reachable, but not usable without the token; usable with it; unreachable when down.
    const refused = await probeHttpInventory({url: server.url, env: {INVAGENT_TOKEN: 'wrong-token'}})
    expect(refused).toMatchObject({reachable: true, usable: false, contract: '1'})
    expect(refused.problem).toMatch(/refused the token \(401\).*INVAGENT_TOKEN/)
    const accepted = await probeHttpInventory({url: server.url, env: {INVAGENT_TOKEN: 'right-token-123'}})
    expect(accepted).toMatchObject({reachable: true, usable: true, clockFrozen: true, problem: null})
    expect(accepted.inventoryId).toMatch(/^[0-9a-f-]{36}$/)
    // The token as the CLI takes it: from a file, else from INVAGENT_TOKEN.
    writeFileSync(join(dir, 'token'), 'right-token-123\n')
    const fromFile = await openHttpInventory({
      url: server.url,
      tokenFile: join(dir, 'token'),
      mirrorPath: join(dir, 'm1.db'),
      env: {},
    })
    expect((await fromFile.getPart(PART)).id).toBe(PART)
    fromFile.close()
    const fromEnv = await openHttpInventory({
      url: server.url,
      mirrorPath: join(dir, 'm2.db'),
      env: {INVAGENT_TOKEN: 'right-token-123'},
    })
    expect((await fromEnv.getPart(PART)).id).toBe(PART)
    fromEnv.close()
  })
})

describe('reference server: requests outside the contract', () => {
  it('answers the one error shape for a missing key, bad arguments, a reused key and an unknown path', async () => {
    const {server} = await setup()
    const post = (path: string, body: unknown, key?: string) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: {'content-type': 'application/json', ...(key ? {'idempotency-key': key} : {})},
      })
    const cases: Array<[Promise<Response>, number, string, RegExp]> = [
      [
        post('/v1/tools/void_transaction', {txn_id: 'T-0000001', reason: 'x'}),
        400,
        'invalid_request',
        /Idempotency-Key/,
      ],
      [post('/v1/tools/void_transaction', {txn_id: 7, reason: 'x'}, 'key-00000001'), 400, 'invalid_request', /txn_id/],
      [fetch(`${server.url}/v1/tools/list_transactions?part_id=${PART}&limit=500`), 400, 'invalid_request', /limit/],
      [fetch(`${server.url}/v1/nowhere`), 404, 'not_found', /no endpoint/],
      [fetch(`${server.url}/v1/tools/get_part?part_id=P-999999`), 422, 'tool_failed', /does not exist/],
      [fetch(`${server.url}/v1/sync/parts?cursor=garbage`), 400, 'invalid_request', /cursor/],
    ]
    for (const [request, status, code, message] of cases) {
      const response = await request
      const body = ErrorBody.parse(await response.json())
      expect([response.status, body.error.code]).toEqual([status, code])
      expect(body.error.message).toMatch(message)
    }
    expect((await post('/v1/tools/recompute_on_hand', {part_id: PART, reason: 'x'}, 'key-reused-1')).status).toBe(200)
    const reused = await post('/v1/tools/recompute_reserved', {part_id: PART, reason: 'x'}, 'key-reused-1')
    expect(reused.status).toBe(422)
    expect(ErrorBody.parse(await reused.json()).error.code).toBe('idempotency_key_reused')
  })

  it('probe: a server that is down is reported unreachable at once', async () => {
    const {server} = await setup()
    await server.crash()
    const started = performance.now()
    const probe = await probeHttpInventory({url: server.url, env: {}})
    expect(probe).toMatchObject({reachable: false, usable: false})
    expect(probe.problem).toMatch(/no answer \(ECONNREFUSED\)/)
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('refuses to listen beyond loopback without a token', async () => {
    expect(isLoopbackHost('127.0.0.1')).toBe(true)
    expect(isLoopbackHost('::1')).toBe(true)
    expect(isLoopbackHost('localhost')).toBe(true)
    expect(isLoopbackHost('0.0.0.0')).toBe(false)
    expect(isLoopbackHost('192.168.1.4')).toBe(false)
    const {path} = generatedInventory()
    const serving = serveInventoryUntilStopped(
      {inventory: path, host: '0.0.0.0', port: 0, signal: AbortSignal.abort()},
      {ready: () => {}, write: () => {}},
    )
    await expect(serving).rejects.toBeInstanceOf(UserError)
    await expect(serving).rejects.toThrow(/refusing to serve the inventory on 0\.0\.0\.0 without a token/)
  })
})
