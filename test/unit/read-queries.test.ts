import {describe, expect, it} from 'vitest'

import {READ_QUERIES, transactionCountSql, transactionPageSql} from '../../src/inventory/read-queries.js'

describe('the read-query table', () => {
  it('gives every statement in both dialects, with as many parameters in each', () => {
    for (const [name, query] of Object.entries(READ_QUERIES)) {
      const sqliteParams = query.sqlite.match(/\?/g)?.length ?? 0
      const postgresParams = query.postgres.match(/\$\d+/g) ?? []
      expect(query.postgres, name).not.toContain('?')
      expect(postgresParams, name).toEqual(Array.from({length: sqliteParams}, (_, index) => `$${index + 1}`))
    }
  })

  it('numbers the placeholders of a filtered transaction list on PostgreSQL only', () => {
    const condition = 't.part_id = ? AND t.status = ?'
    expect(transactionPageSql('sqlite', condition)).toMatch(/WHERE t\.part_id = \? AND t\.status = \? .* LIMIT \?$/)
    expect(transactionPageSql('postgres', condition)).toMatch(
      /WHERE t\.part_id = \$1 AND t\.status = \$2 .* LIMIT \$3$/,
    )
    expect(transactionCountSql('postgres', condition)).toBe(
      'SELECT count(*) AS n FROM transactions t WHERE t.part_id = $1 AND t.status = $2',
    )
  })

  it('keeps the id lists of each dialect: one JSON array on SQLite, an array on PostgreSQL', () => {
    expect(READ_QUERIES.partRows.sqlite).toContain('WHERE id IN (SELECT value FROM json_each(?))')
    expect(READ_QUERIES.partRows.postgres).toContain('WHERE id = ANY($1)')
    expect(READ_QUERIES.transactionRows.sqlite.split(' UNION ')).toHaveLength(3)
    expect(READ_QUERIES.transactionRows.postgres).not.toContain('UNION')
  })
})
