import {defineRule, type FindingDraft} from '../rule-definition.js'
import type {ScopedTransactionRow} from '../scans.js'

type Key = {source: string; external_ref: string}
type PostingRow = Key & {id: string; created_at: number}

/** Findings of posted rows ordered by (source, external_ref, created_at, id): every posting after a key's first. */
function findings(rows: PostingRow[]): FindingDraft[] {
  const drafts: FindingDraft[] = []
  for (let start = 0; start < rows.length;) {
    let end = start + 1
    while (
      end < rows.length &&
      rows[end].source === rows[start].source &&
      rows[end].external_ref === rows[start].external_ref
    )
      end++
    const {source, external_ref: externalRef, id: first} = rows[start]
    for (let index = start + 1; index < end; index++) {
      const evidence = {source, external_ref: externalRef, first_posting: first, postings: end - start}
      drafts.push({entity: rows[index].id, evidence})
    }
    start = end
  }
  return drafts
}

/** The (source, external_ref) keys posted more than once, from the partial index on posted rows. */
const SQLITE_GROUPS_SQL = `
  SELECT source, external_ref FROM transactions INDEXED BY idx_transactions_posted_ref
  WHERE status = 'posted' GROUP BY source, external_ref HAVING COUNT(*) > 1`

const SQLITE_ROWS_OF_KEY_SQL =
  `
  SELECT id, created_at, source, external_ref FROM transactions WHERE status = 'posted' AND source = ? ` +
  `AND external_ref = ? ORDER BY created_at, id`

/** SQLite: one seek per key. */
const sqliteRows = {
  sql: SQLITE_ROWS_OF_KEY_SQL,
  runs: (keys: Key[]) => keys.map((key) => [key.source, key.external_ref]),
  findings,
}

/**
 * PostgreSQL asks for the keys apart from the rows behind them: joined in one query, the planner
 * expects a third of all keys to be duplicated and scans the whole table again to join them.
 */
const POSTGRES_GROUPS_SQL = `
  SELECT source, external_ref FROM transactions WHERE status = 'posted'
  GROUP BY source, external_ref HAVING COUNT(*) > 1`

const POSTGRES_ROWS_OF_KEYS_SQL = `
  SELECT t.id, t.created_at, t.source, t.external_ref
  FROM transactions t JOIN unnest($1::text[], $2::text[]) AS k(source, external_ref)
    ON k.source = t.source AND k.external_ref = t.external_ref
  WHERE t.status = 'posted'
  ORDER BY t.source, t.external_ref, t.created_at, t.id`

/** PostgreSQL: every key at once. */
const postgresRows = {
  sql: POSTGRES_ROWS_OF_KEYS_SQL,
  runs: (keys: Key[]) => {
    if (keys.length === 0) return []
    return [[keys.map((key) => key.source), keys.map((key) => key.external_ref)]]
  },
  findings,
}

/** The keys of the given posted transactions, each once. */
function distinctKeys(rows: Key[]): Key[] {
  const keys = new Map<string, Key>()
  for (const row of rows) keys.set(`${row.source}\u0000${row.external_ref}`, row)
  return [...keys.values()]
}

const posted = (row: ScopedTransactionRow) => row.status === 'posted'

export const duplicatePosting = defineRule({
  name: 'duplicate_posting',
  entity: 'transaction',
  severity: 'high',
  description: 'a later posted transaction with the same (source, external_ref)',
  rootCauses: [
    {rootCause: 'webhook_redelivery', expected: 'fix', description: 'the same webhook was delivered twice'},
    {rootCause: 'job_ran_twice', expected: 'fix', description: 'an import job ran twice over the same batch'},
    {
      rootCause: 'already_invoiced',
      expected: 'escalate',
      description: 'the later posting was already shipped or invoiced',
    },
  ],
  sqlite: {
    whole: {from: {sql: SQLITE_GROUPS_SQL, secondConnection: true}, then: [sqliteRows]},
    scoped: {
      of: 'transaction',
      where: posted,
      then: [{...sqliteRows, runs: (rows: Key[]) => sqliteRows.runs(distinctKeys(rows))}],
    },
  },
  postgres: {
    whole: {from: {sql: POSTGRES_GROUPS_SQL, secondConnection: true}, then: [postgresRows]},
    scoped: {
      of: 'transaction',
      where: posted,
      then: [{...postgresRows, runs: (rows: Key[]) => postgresRows.runs(distinctKeys(rows))}],
    },
  },
})
