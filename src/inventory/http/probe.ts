import {API_PREFIX, HealthResponse, InfoResponse} from './contract.js'
import {InventoryHttpClient} from './http-client.js'
import {resolveToken} from './token.js'

export interface HttpInventoryProbe {
  url: string
  /** The server answered GET /health. */
  reachable: boolean
  /** It also accepted the token (or needs none) and described its inventory. */
  usable: boolean
  contract: string | null
  inventoryId: string | null
  watermark: number | null
  clockFrozen: boolean | null
  /** What went wrong, with the next step; null when usable. */
  problem: string | null
}

/**
 * What `doctor` says about an HTTP inventory: reachable or not, and what it is. One attempt per
 * request and a short timeout: a diagnosis must not hang on a dead server.
 */
export async function probeHttpInventory(options: {
  url: string
  tokenFile?: string
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
}): Promise<HttpInventoryProbe> {
  const probe: HttpInventoryProbe = {
    url: options.url,
    reachable: false,
    usable: false,
    contract: null,
    inventoryId: null,
    watermark: null,
    clockFrozen: null,
    problem: null,
  }
  const client = new InventoryHttpClient({
    baseUrl: options.url,
    token: resolveToken(options.tokenFile, options.env),
    timeoutMs: options.timeoutMs ?? 3000,
    maxAttempts: 1,
  })
  try {
    probe.contract = (await client.get('/health', HealthResponse)).contract
    probe.reachable = true
    const info = await client.get(`${API_PREFIX}/info`, InfoResponse)
    Object.assign(probe, {
      usable: true,
      inventoryId: info.inventory_id,
      watermark: info.watermark,
      clockFrozen: info.clock_frozen,
    })
  } catch (error) {
    const suggestions = (error as {suggestions?: string[]}).suggestions ?? []
    probe.problem = [(error as Error).message, ...suggestions].join(' ')
  }
  return probe
}
