import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {parseConfig} from '../../src/config/load-config.js'
import {
  describeLocator,
  parseLocator,
  postgresDatabaseOf,
  redactLocatorText,
  withPostgresDatabase,
} from '../../src/inventory/locator.js'
import {resolveLocator} from '../../src/inventory/resolve-locator.js'

describe('parseLocator', () => {
  it('reads a bare path, sqlite:PATH and sqlite:///abs as SQLite files, resolved against the working directory', () => {
    expect(parseLocator('inv.db')).toEqual({kind: 'sqlite', path: resolve('inv.db')})
    expect(parseLocator('sqlite:data/inv.db')).toEqual({kind: 'sqlite', path: resolve('data/inv.db')})
    expect(parseLocator('sqlite:///tmp/inv.db')).toEqual({kind: 'sqlite', path: '/tmp/inv.db'})
    expect(parseLocator('SQLITE:inv.db')).toEqual({kind: 'sqlite', path: resolve('inv.db')})
    // A drive letter is not a scheme.
    expect(parseLocator('C:\\inv.db').kind).toBe('sqlite')
  })

  it('reads postgres:// and postgresql:// as PostgreSQL, keeping the URL as given', () => {
    expect(parseLocator('postgres://postgres@127.0.0.1:5432/inv')).toEqual({
      kind: 'postgres',
      url: 'postgres://postgres@127.0.0.1:5432/inv',
    })
    expect(parseLocator('postgresql://u:p@db.example/inv?sslmode=require').kind).toBe('postgres')
    expect(parseLocator('postgres:///inv?host=/var/run/postgresql').kind).toBe('postgres')
  })

  it('reads http:// and https:// as HTTP inventories', () => {
    expect(parseLocator('https://erp.example/api/inventory')).toEqual({
      kind: 'http',
      url: 'https://erp.example/api/inventory',
    })
    expect(parseLocator('http://127.0.0.1:8088').kind).toBe('http')
  })

  it('refuses an unknown scheme with the nearest known one instead of treating it as a file name', () => {
    expect(() => parseLocator('postgress://db/inv')).toThrow('unknown inventory scheme "postgress:"')
    try {
      parseLocator('postgress://u:secret@db/inv')
    } catch (error) {
      expect((error as {suggestions: string[]}).suggestions[0]).toBe('Did you mean "postgres:"?')
      expect((error as Error).message).not.toContain('secret')
    }
    expect(() => parseLocator('mysql://db/inv')).toThrow(/unknown inventory scheme "mysql:"/)
  })

  it('refuses an empty locator, a sqlite: without a file and a URL without a host', () => {
    expect(() => parseLocator('  ')).toThrow('the inventory locator is empty')
    expect(() => parseLocator('sqlite:')).toThrow('names no file')
    expect(() => parseLocator('postgres://')).toThrow('names no host')
    expect(() => parseLocator('https://')).toThrow(/not a valid URL|names no host/)
  })
})

describe('redacting locators', () => {
  it('replaces the password and token-like parameters, and leaves everything else alone', () => {
    expect(redactLocatorText('postgres://app:s3cr%40t@db:5432/inv')).toBe('postgres://app:***@db:5432/inv')
    expect(redactLocatorText('https://erp.example/api?token=abc&page=2')).toBe(
      'https://erp.example/api?token=***&page=2',
    )
    expect(redactLocatorText('postgres://app@db/inv')).toBe('postgres://app@db/inv')
    expect(redactLocatorText('/data/inv.db')).toBe('/data/inv.db')
    expect(describeLocator(parseLocator('postgresql://a:b@h/d?password=x'))).toBe('postgresql://a:***@h/d?password=***')
  })

  it('hides a password even in a URL that does not parse', () => {
    expect(redactLocatorText('postgres://app:pa ss@[bad/inv')).toBe('postgres://app:***@[bad/inv')
  })

  it('names the database of a PostgreSQL locator and points one at another database', () => {
    expect(postgresDatabaseOf('postgres://u@h/inv%20a')).toBe('inv a')
    expect(postgresDatabaseOf('postgres://app@h')).toBe('app')
    expect(withPostgresDatabase('postgres://u:p@h:5/inv?sslmode=disable', 'postgres')).toBe(
      'postgres://u:p@h:5/postgres?sslmode=disable',
    )
  })
})

describe('resolveLocator: which inventory a command works on', () => {
  const config = parseConfig('inventory: postgres://cfg@h/inv\n', join(process.cwd(), 'invagent.yaml'), {})

  it('takes --inventory, then --db, then INVAGENT_INVENTORY, INVAGENT_DB, the config file, the default', () => {
    const env = {INVAGENT_INVENTORY: 'postgres://env@h/inv', INVAGENT_DB: 'env.db'}
    expect(resolveLocator({inventory: 'flag.db', config, env})).toMatchObject({
      source: 'flag --inventory',
      locator: {path: resolve('flag.db')},
    })
    expect(resolveLocator({db: 'db.db', config, env})).toMatchObject({
      source: 'flag --db',
      locator: {path: resolve('db.db')},
    })
    expect(resolveLocator({config, env})).toMatchObject({
      source: 'env INVAGENT_INVENTORY',
      locator: {url: 'postgres://env@h/inv'},
    })
    expect(resolveLocator({config, env: {INVAGENT_DB: 'env.db'}})).toMatchObject({
      source: 'env INVAGENT_DB',
      locator: {path: resolve('env.db')},
    })
    expect(resolveLocator({config, env: {}})).toMatchObject({source: 'config', locator: {url: 'postgres://cfg@h/inv'}})
    expect(resolveLocator({env: {}})).toEqual({
      source: 'default',
      locator: {kind: 'sqlite', path: resolve('.invagent/inventory.db')},
    })
  })

  it('refuses --inventory together with --db, and a URL given to --db', () => {
    expect(() => resolveLocator({inventory: 'a.db', db: 'b.db', env: {}})).toThrow(
      '--inventory and --db both name an inventory; give one',
    )
    expect(() => resolveLocator({db: 'postgres://h/inv', env: {}})).toThrow('--db takes the path of a SQLite file')
  })
})
