import {join, resolve} from 'node:path'

import {didYouMean, UserError} from '../errors.js'

/** The inventory used when none is named: the demo `audit` creates on first run. */
export const DEFAULT_SQLITE_PATH = join('.invagent', 'inventory.db')

/**
 * One way to name an inventory (docs/architecture.md, "Backends"): a SQLite path or
 * `sqlite:PATH`, `postgres://…` / `postgresql://…`, or `http://…` / `https://…`.
 */
export type InventoryLocator =
  {kind: 'sqlite'; path: string} | {kind: 'postgres'; url: string} | {kind: 'http'; url: string}

/** Where a locator came from, for messages ("from INVAGENT_INVENTORY") and for the demo default. */
export type LocatorSource =
  'flag --inventory' | 'flag --db' | 'env INVAGENT_INVENTORY' | 'env INVAGENT_DB' | 'config' | 'default'

const SCHEMES = ['sqlite', 'postgres', 'postgresql', 'http', 'https'] as const

/** Query parameters whose values are secrets in a connection URL. */
const SECRET_PARAMETERS = /^(password|passwd|pass|pwd|token|access_token|api_key|apikey|secret|sslpassword|sslkey)$/i

/** A URL scheme: letters first, then letters, digits, `+`, `-` or `.`; one letter alone is a drive (C:\…). */
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]+):/

/**
 * Parses a locator. Anything without a scheme is a SQLite path (resolved against the working
 * directory); an unknown scheme is an error with the nearest known one, never a file name.
 */
export function parseLocator(text: string): InventoryLocator {
  const trimmed = text.trim()
  if (trimmed === '') {
    throw new UserError('the inventory locator is empty', {
      suggestions: ['Give a SQLite path, sqlite:PATH, postgres://USER@HOST/DB or https://HOST/…'],
    })
  }
  const scheme = SCHEME.exec(trimmed)?.[1]?.toLowerCase()
  if (scheme === undefined) return {kind: 'sqlite', path: resolve(trimmed)}
  switch (scheme) {
    case 'sqlite': {
      // sqlite:PATH, and the URL-like sqlite://PATH (sqlite:///abs/path is the absolute /abs/path).
      let path = trimmed.slice('sqlite:'.length)
      if (path.startsWith('//')) path = path.slice(2)
      if (path === '')
        throw new UserError(`"${text}" names no file`, {
          suggestions: ['Write sqlite:PATH, e.g. sqlite:.invagent/inventory.db'],
        })
      return {kind: 'sqlite', path: resolve(path)}
    }
    case 'postgres':
    case 'postgresql':
      return {kind: 'postgres', url: checkedUrl(trimmed, 'postgres')}
    case 'http':
    case 'https':
      return {kind: 'http', url: checkedUrl(trimmed, 'http')}
  }
  const near = didYouMean(scheme, SCHEMES)
  throw new UserError(`unknown inventory scheme "${scheme}:" in ${redactLocatorText(trimmed)}`, {
    code: 'LOCATOR_SCHEME',
    suggestions: [
      ...(near ? [`Did you mean "${near}:"?`] : []),
      'Inventories are named by a SQLite path (or sqlite:PATH), postgres://… / postgresql://…, or http(s)://….',
    ],
  })
}

function checkedUrl(text: string, kind: 'postgres' | 'http'): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new UserError(`"${redactLocatorText(text)}" is not a valid URL`, {
      code: 'LOCATOR_URL',
      suggestions: [
        kind === 'postgres'
          ? 'Write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE; percent-encode special characters in the password.'
          : 'Write http(s)://HOST[:PORT]/PATH.',
      ],
    })
  }
  if (kind === 'http' && url.hostname === '')
    throw new UserError(`"${redactLocatorText(text)}" names no host`, {code: 'LOCATOR_URL'})
  if (kind === 'postgres' && url.hostname === '' && !url.searchParams.has('host')) {
    throw new UserError(`"${redactLocatorText(text)}" names no host`, {
      code: 'LOCATOR_URL',
      suggestions: ['Write postgres://USER@HOST[:PORT]/DATABASE, e.g. postgres://postgres@127.0.0.1:5432/inventory'],
    })
  }
  return text
}

/** The locator as it may be printed or logged: passwords and token-like parameters replaced by ***. */
export function describeLocator(locator: InventoryLocator): string {
  return locator.kind === 'sqlite' ? locator.path : redactLocatorText(locator.url)
}

/** Redacts the credentials of any URL-shaped text; text that is not a URL comes back unchanged. */
export function redactLocatorText(text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    // Not parseable: still hide anything between "://user:" and "@".
    return text.replace(/(\/\/[^/:@]*:)[^@/]*@/, '$1***@')
  }
  let changed = false
  if (url.password !== '') {
    url.password = '***'
    changed = true
  }
  for (const key of [...url.searchParams.keys()]) {
    if (SECRET_PARAMETERS.test(key)) {
      url.searchParams.set(key, '***')
      changed = true
    }
  }
  if (!changed) return text
  return url.toString().replaceAll('%2A%2A%2A', '***')
}

/** The database name of a PostgreSQL locator (what `inventory init` creates when it is missing). */
export function postgresDatabaseOf(url: string): string {
  const parsed = new URL(url)
  const name = decodeURIComponent(parsed.pathname.replace(/^\//, ''))
  return name !== '' ? name : decodeURIComponent(parsed.username || 'postgres')
}

/** The same PostgreSQL locator, pointing at another database on the same server. */
export function withPostgresDatabase(url: string, database: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${encodeURIComponent(database)}`
  return parsed.toString()
}
