import {defineRule} from '../rule-definition.js'
import type {ScopedPartRow} from '../scans.js'

type Row = {id: string; on_hand: number}

const SQL = 'SELECT id, on_hand FROM parts WHERE on_hand < 0'
const finding = (row: Row) => ({entity: row.id, evidence: {on_hand: row.on_hand}})
const scoped = {of: 'part', where: (row: ScopedPartRow) => row.on_hand < 0, finding} as const

export const negativeOnHand = defineRule({
  name: 'negative_on_hand',
  entity: 'part',
  severity: 'high',
  description: 'on_hand < 0',
  rootCauses: [
    {
      rootCause: 'receipt_stuck_pending',
      expected: 'fix',
      description: 'a receipt that would cover the issues is still pending after a transient sync failure',
    },
    {rootCause: 'duplicate_issue_posting', expected: 'fix', description: 'the same issue was posted twice'},
    {
      rootCause: 'issue_uom_error',
      expected: 'fix',
      description: 'an issue was posted in the pack unit although the source document counted eaches',
    },
    {
      rootCause: 'unexplained_shortage',
      expected: 'escalate',
      description: 'nothing in the ledger explains the shortage: a physical count is needed',
    },
  ],
  sqlite: {whole: {from: {sql: SQL}, finding}, scoped},
  postgres: {whole: {from: {sql: SQL}, finding}, scoped},
})
