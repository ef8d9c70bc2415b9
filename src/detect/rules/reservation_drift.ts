import {defineRule, type FindingDraft} from '../rule-definition.js'
import type {ScopedPartRow} from '../scans.js'

type Row = {id: string; on_hand: number; reserved: number; active: number}

const finding = (row: Row): FindingDraft => ({
  entity: row.id,
  evidence: {reserved: row.reserved, active_reserved: row.active, on_hand: row.on_hand},
})

const SQLITE_SQL = `
  SELECT p.id AS id, p.on_hand AS on_hand, p.reserved AS reserved, COALESCE(r.active, 0) AS active
  FROM parts p LEFT JOIN (
    SELECT part_id, SUM(qty) AS active FROM reservations INDEXED BY idx_reservations_active
    WHERE status = 'active' GROUP BY part_id) r ON r.part_id = p.id
  WHERE p.reserved <> COALESCE(r.active, 0) OR (p.reserved > 0 AND p.reserved > p.on_hand)`

const POSTGRES_SQL = `
  SELECT p.id, p.on_hand, p.reserved, COALESCE(r.active, 0) AS active
  FROM parts p LEFT JOIN (
    SELECT part_id, SUM(qty) AS active FROM reservations WHERE status = 'active' GROUP BY part_id
  ) r ON r.part_id = p.id
  WHERE p.reserved <> COALESCE(r.active, 0) OR (p.reserved > 0 AND p.reserved > p.on_hand)`

/** A column of the scoped part scan: the part's active reservations. */
const ACTIVE_OF_PART_SQL =
  `(SELECT COALESCE(SUM(qty), 0) FROM reservations r ` + `WHERE r.part_id = p.id AND r.status = 'active')`

const scoped = {
  of: 'part',
  columns: {active: ACTIVE_OF_PART_SQL},
  where: (row: ScopedPartRow & {active: number}) =>
    row.active !== row.reserved || (row.reserved > 0 && row.reserved > row.on_hand),
  finding,
} as const

export const reservationDrift = defineRule({
  name: 'reservation_drift',
  entity: 'part',
  // Reservations beyond stock are worse than a cache that merely disagrees with them.
  severity: (evidence) => ((evidence.reserved as number) > (evidence.on_hand as number) ? 'high' : 'medium'),
  description: 'reserved differs from active reservations, or is positive and exceeds on_hand',
  rootCauses: [
    {
      rootCause: 'reserved_cache_drift',
      expected: 'fix',
      description: 'reserved drifted from the sum of active reservations',
    },
    {
      rootCause: 'stale_reservation',
      expected: 'fix',
      description: 'active reservations for order lines that already shipped',
    },
    {
      rootCause: 'picked_stock',
      expected: 'escalate',
      description: 'reservations exceed stock but none is stale: releasing would release picked stock',
    },
  ],
  // On PostgreSQL it runs on the second connection after the duplicate pass, which is about as long as the ledger pass.
  sqlite: {whole: {from: {sql: SQLITE_SQL}, finding}, scoped},
  postgres: {whole: {from: {sql: POSTGRES_SQL, secondConnection: true}, finding}, scoped},
})
