import {resolve} from 'node:path'

import {UserError} from '../errors.js'
import type {InventoryBackend} from './backend.js'
import {SqliteInventory} from './sqlite-backend.js'

export interface OpenInventoryOptions {
  readOnly?: boolean
}

/** What a locator names: the kind of inventory and where it is. */
export interface ParsedLocator {
  kind: 'sqlite'
  path: string
}

/**
 * Parses an inventory locator: a SQLite file path, or `sqlite:PATH`. Other schemes are named
 * here as they are added (docs/architecture.md, "Locators").
 */
export function parseLocator(locator: string): ParsedLocator {
  const scheme = /^([a-z][a-z0-9+.-]*):(?!\\)/i.exec(locator)
  // A Windows drive letter ("C:") is a path, not a scheme.
  if (!scheme || scheme[1].length === 1) return {kind: 'sqlite', path: locator}
  const name = scheme[1].toLowerCase()
  if (name === 'sqlite') return {kind: 'sqlite', path: locator.slice(scheme[0].length).replace(/^\/\/(?=\/)/, '')}
  throw new UserError(`inventory locator "${locator}" has the scheme "${name}:", which this build cannot open`, {
    code: 'LOCATOR_SCHEME',
    suggestions: ['Give a SQLite path or sqlite:PATH.'],
  })
}

/** The path of a SQLite locator, or undefined for other kinds (where files next to it make no sense). */
export function localPathOf(locator: string): string | undefined {
  const parsed = parseLocator(locator)
  return parsed.kind === 'sqlite' ? parsed.path : undefined
}

/** Opens the inventory a locator names: the one place every command and library function opens one. */
export function openInventory(locator: string, options: OpenInventoryOptions = {}): InventoryBackend & {close(): void} {
  const parsed = parseLocator(locator)
  return SqliteInventory.open(parsed.path, {readOnly: options.readOnly})
}

/** The same locator with a SQLite path made absolute: valid from any working folder. */
export function absoluteLocator(locator: string): string {
  const parsed = parseLocator(locator)
  return resolve(parsed.path)
}
