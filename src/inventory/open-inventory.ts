import type {InventoryBackend} from './backend.js'
import {describeLocator, parseLocator, type InventoryLocator} from './locator.js'
import {PostgresInventory} from './postgres/backend.js'
import {SqliteInventory} from './sqlite-backend.js'

export interface OpenInventoryOptions {
  readOnly?: boolean
  /** For an inventory over HTTP: the file holding the bearer token (else INVAGENT_TOKEN). */
  tokenFile?: string
}

/** A locator as given (text) or already parsed. */
export type LocatorInput = string | InventoryLocator

function toLocator(locator: LocatorInput): InventoryLocator {
  return typeof locator === 'string' ? parseLocator(locator) : locator
}

/** The path of a SQLite locator, or undefined for other kinds (where files next to it make no sense). */
export function localPathOf(locator: LocatorInput): string | undefined {
  const parsed = toLocator(locator)
  return parsed.kind === 'sqlite' ? parsed.path : undefined
}

/**
 * The locator as text that names the same inventory from any working folder, as a parked plan
 * records it: an absolute SQLite path, or the URL with any password or token redacted (the person
 * approving supplies those again).
 */
export function absoluteLocator(locator: LocatorInput): string {
  return describeLocator(toLocator(locator))
}

/**
 * Opens the inventory a locator names: the one place that knows every backend
 * (docs/architecture.md, "Locators").
 */
export async function openInventory(
  locator: LocatorInput,
  options: OpenInventoryOptions = {},
): Promise<InventoryBackend> {
  const parsed = toLocator(locator)
  switch (parsed.kind) {
    case 'sqlite':
      return SqliteInventory.open(parsed.path, {readOnly: options.readOnly})
    case 'postgres':
      return PostgresInventory.open(parsed.url, options)
    case 'http': {
      // The token from INVAGENT_TOKEN (or a token file given to openHttpInventory); the mirror under .invagent/mirrors.
      const {openHttpInventory} = await import('./http/open-http-inventory.js')
      return openHttpInventory({url: parsed.url, tokenFile: options.tokenFile})
    }
  }
}
