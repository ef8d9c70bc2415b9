import pg from 'pg'

/**
 * The PostgreSQL server the integration tests use: 127.0.0.1:5432, user postgres, trust
 * authentication (INVAGENT_TEST_POSTGRES overrides it). Each test file works in a database of its
 * own, created here and dropped afterwards.
 */
export const TEST_SERVER = process.env.INVAGENT_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** Undefined when the server answers; otherwise why not, for the skip message. */
export async function postgresUnavailable(): Promise<string | undefined> {
  const client = new pg.Client({connectionString: TEST_SERVER, connectionTimeoutMillis: 3000})
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return undefined
  } catch (error) {
    const why = (error as Error).message
    return `no PostgreSQL server answers at ${TEST_SERVER} (${why}); .ci/run starts or installs one`
  } finally {
    await client.end().catch(() => {})
  }
}

function urlOf(database: string): string {
  const url = new URL(TEST_SERVER)
  url.pathname = `/${database}`
  return url.toString()
}

async function onServer(sql: string): Promise<void> {
  const client = new pg.Client({connectionString: TEST_SERVER})
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/** A fresh, empty database named after the test file; `drop` removes it (and ends its connections). */
export async function createTestDatabase(
  prefix: string,
): Promise<{url: string; name: string; drop: () => Promise<void>}> {
  const name = `invagent_test_${prefix}_${process.pid}_${Math.floor(Math.random() * 1e6)}`.toLowerCase()
  await onServer(`CREATE DATABASE "${name}"`)
  return {
    url: urlOf(name),
    name,
    drop: () => onServer(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  }
}

/** A database name that does not exist on the test server, and is not created. */
export function missingDatabaseUrl(): string {
  return urlOf(`invagent_missing_${process.pid}_${Math.floor(Math.random() * 1e6)}`)
}
