/**
 * The reference inventory schema's tables and columns, described once (docs/architecture.md, "Reference
 * inventory"). The SQLite DDL (SCHEMA_SQL), the PostgreSQL DDL, the columns a database is checked for,
 * and the column lists that loading, row writes and sync name are all derived from this description,
 * so a column is added in one place. Columns are only ever added, never renamed: the schema is a contract.
 */

/** The values the schema allows in its enumerated columns; the tool schema and the REST contract use the same. */
export const TRANSACTION_KINDS = ['receipt', 'issue', 'adjustment', 'transfer_in', 'transfer_out', 'return'] as const
export const TRANSACTION_STATUSES = ['pending', 'posted', 'error', 'void'] as const
export const RESERVATION_STATUSES = ['active', 'released', 'fulfilled'] as const

/** How a column is stored in each dialect. */
export interface ColumnType {
  readonly sqlite: 'TEXT' | 'INTEGER'
  readonly postgres: string
}

/** Text that is compared and sorted: the "C" collation makes PostgreSQL order it bytewise, as SQLite does. */
const ORDERED_TEXT = {sqlite: 'TEXT', postgres: 'text COLLATE "C"'} as const satisfies ColumnType
/** Text that is only stored and read back. */
const TEXT = {sqlite: 'TEXT', postgres: 'text'} as const satisfies ColumnType
/** The quantity of one row, or a unit factor. */
const INTEGER = {sqlite: 'INTEGER', postgres: 'integer'} as const satisfies ColumnType
/** A stock figure that is a sum, or a timestamp in epoch milliseconds. */
const BIGINT = {sqlite: 'INTEGER', postgres: 'bigint'} as const satisfies ColumnType
/** A JSON document: text on SQLite, jsonb on PostgreSQL. */
const JSON_DOCUMENT = {sqlite: 'TEXT', postgres: 'jsonb'} as const satisfies ColumnType

export interface ColumnSpec {
  readonly name: string
  readonly type: ColumnType
  /** NULL is allowed; every other column is NOT NULL. */
  readonly nullable?: boolean
  /** The default, as SQL text that both dialects read the same. */
  readonly default?: string
  readonly unique?: boolean
  /** The only values the column may hold (a CHECK … IN). */
  readonly oneOf?: readonly string[]
  /** Any other CHECK condition. */
  readonly check?: string
  /**
   * Numbered by the database when an INSERT leaves it out: the INTEGER PRIMARY KEY (the rowid) on
   * SQLite, an identity column on PostgreSQL. Only for a table's single-column INTEGER key.
   */
  readonly generated?: boolean
}

export interface TableSpec {
  readonly name: string
  readonly columns: readonly ColumnSpec[]
  readonly primaryKey: readonly string[]
  /** SQLite stores the table in its primary key's b-tree (WITHOUT ROWID). */
  readonly withoutRowid?: boolean
  /** invagent's own bookkeeping: not required of a database built elsewhere. */
  readonly bookkeeping?: boolean
}

/** The reference tables, in the order their DDL creates them. */
export const REFERENCE_SCHEMA = [
  {
    name: 'parts',
    primaryKey: ['id'],
    columns: [
      {name: 'id', type: ORDERED_TEXT},
      {name: 'sku', type: ORDERED_TEXT, unique: true},
      {name: 'name', type: ORDERED_TEXT},
      {name: 'uom', type: ORDERED_TEXT},
      {name: 'on_hand', type: BIGINT, default: '0'},
      {name: 'reserved', type: BIGINT, default: '0'},
      {name: 'location', type: ORDERED_TEXT, default: "''"},
      {name: 'updated_at', type: BIGINT},
    ],
  },
  {
    name: 'transactions',
    primaryKey: ['id'],
    columns: [
      {name: 'id', type: ORDERED_TEXT},
      {name: 'part_id', type: ORDERED_TEXT, nullable: true},
      {name: 'sku', type: ORDERED_TEXT},
      {name: 'kind', type: ORDERED_TEXT, oneOf: TRANSACTION_KINDS},
      {name: 'qty', type: INTEGER},
      {name: 'uom', type: ORDERED_TEXT},
      {name: 'status', type: ORDERED_TEXT, oneOf: TRANSACTION_STATUSES},
      {name: 'source', type: ORDERED_TEXT},
      {name: 'external_ref', type: ORDERED_TEXT},
      {name: 'created_at', type: BIGINT},
      {name: 'posted_at', type: BIGINT, nullable: true},
    ],
  },
  {
    name: 'reservations',
    primaryKey: ['id'],
    columns: [
      {name: 'id', type: ORDERED_TEXT},
      {name: 'part_id', type: ORDERED_TEXT},
      {name: 'qty', type: INTEGER},
      {name: 'order_ref', type: ORDERED_TEXT},
      {name: 'status', type: ORDERED_TEXT, oneOf: RESERVATION_STATUSES},
      {name: 'created_at', type: BIGINT},
    ],
  },
  {
    name: 'integration_events',
    primaryKey: ['id'],
    columns: [
      {name: 'id', type: BIGINT, generated: true},
      {name: 'txn_id', type: ORDERED_TEXT},
      {name: 'at', type: BIGINT},
      {name: 'level', type: ORDERED_TEXT},
      {name: 'message', type: ORDERED_TEXT},
    ],
  },
  {
    name: 'sku_aliases',
    primaryKey: ['alias'],
    columns: [
      {name: 'alias', type: ORDERED_TEXT},
      {name: 'part_id', type: ORDERED_TEXT},
    ],
  },
  {
    name: 'uom_conversions',
    primaryKey: ['part_id', 'uom'],
    withoutRowid: true,
    columns: [
      {name: 'part_id', type: ORDERED_TEXT},
      {name: 'uom', type: ORDERED_TEXT},
      {name: 'factor', type: INTEGER, check: 'factor > 0'},
    ],
  },
  {
    name: 'agent_actions',
    primaryKey: ['idempotency_key'],
    columns: [
      {name: 'idempotency_key', type: ORDERED_TEXT},
      {name: 'run_id', type: TEXT},
      {name: 'finding_id', type: TEXT},
      {name: 'tool', type: TEXT},
      {name: 'args', type: JSON_DOCUMENT},
      {name: 'result', type: JSON_DOCUMENT},
      {name: 'at', type: BIGINT},
    ],
  },
  {
    name: 'invagent_meta',
    primaryKey: ['key'],
    bookkeeping: true,
    columns: [
      {name: 'key', type: ORDERED_TEXT},
      {name: 'value', type: TEXT},
    ],
  },
] as const satisfies readonly TableSpec[]

type ReferenceTable = (typeof REFERENCE_SCHEMA)[number]

export type ReferenceTableName = ReferenceTable['name']

type NamesOf<Columns> = {readonly [K in keyof Columns]: Columns[K] extends {name: infer Column} ? Column : never}

/** A table's column names as a tuple of literals, in the order of its DDL. */
export type ColumnNames<Name extends ReferenceTableName> = NamesOf<Extract<ReferenceTable, {name: Name}>['columns']>

export function referenceTable(name: ReferenceTableName): TableSpec {
  return REFERENCE_SCHEMA.find((table) => table.name === name)!
}

/** The table's columns in the order of its DDL (and of `SELECT *`). */
export function columnNames<Name extends ReferenceTableName>(name: Name): ColumnNames<Name> {
  return referenceTable(name).columns.map((column) => column.name) as unknown as ColumnNames<Name>
}

function checks(column: ColumnSpec): string {
  const values = column.oneOf?.map((value) => `'${value.replaceAll("'", "''")}'`).join(', ')
  return (
    (values === undefined ? '' : ` CHECK (${column.name} IN (${values}))`) +
    (column.check === undefined ? '' : ` CHECK (${column.check})`)
  )
}

function sqliteColumn(column: ColumnSpec, inlineKey: boolean): string {
  // An inline single-column key is written as the hand-written schema always had it: without NOT NULL.
  const constraint = inlineKey ? ' PRIMARY KEY' : column.nullable ? '' : ' NOT NULL'
  return (
    `  ${column.name} ${column.type.sqlite}${constraint}${column.unique ? ' UNIQUE' : ''}` +
    `${column.default === undefined ? '' : ` DEFAULT ${column.default}`}${checks(column)}`
  )
}

/**
 * The CREATE TABLE of one table on SQLite. `keyless` leaves the primary key out (its columns stay
 * NOT NULL): a staging copy that never looks rows up by key is faster to fill without one.
 */
export function sqliteTableSql(table: TableSpec, options: {keyless?: boolean} = {}): string {
  const inlineKey = !options.keyless && table.primaryKey.length === 1 ? table.primaryKey[0] : undefined
  const lines = table.columns.map((column) => sqliteColumn(column, column.name === inlineKey))
  if (!options.keyless && inlineKey === undefined) lines.push(`  PRIMARY KEY (${table.primaryKey.join(', ')})`)
  const withoutRowid = table.withoutRowid && !options.keyless ? ' WITHOUT ROWID' : ''
  return `CREATE TABLE IF NOT EXISTS ${table.name} (\n${lines.join(',\n')}\n)${withoutRowid};`
}

/** Every reference table on SQLite; the tables named in `keyless` without their primary key. */
export function sqliteSchemaSql(options: {keyless?: readonly ReferenceTableName[]} = {}): string {
  const tables = REFERENCE_SCHEMA.map((table) =>
    sqliteTableSql(table, {keyless: options.keyless?.includes(table.name) ?? false}),
  )
  return `\n${tables.join('\n')}\n`
}

function postgresColumn(column: ColumnSpec): string {
  // An identity column is NOT NULL by definition.
  const constraint = column.generated ? ' GENERATED BY DEFAULT AS IDENTITY' : column.nullable ? '' : ' NOT NULL'
  const fallback = column.default === undefined ? '' : ` DEFAULT ${column.default}`
  return `  ${column.name} ${column.type.postgres}${constraint}${fallback}${checks(column)}`
}

/** Every reference table on PostgreSQL, without keys: bulk loading fills them first and adds the keys after. */
export function postgresTablesSql(): string {
  const tables = REFERENCE_SCHEMA.map(
    (table: TableSpec) =>
      `CREATE TABLE IF NOT EXISTS ${table.name} (\n${table.columns.map(postgresColumn).join(',\n')}\n);`,
  )
  return `\n${tables.join('\n')}\n`
}

/** The primary keys and unique constraints of every reference table on PostgreSQL. */
export function postgresKeysSql(): string {
  const keys = REFERENCE_SCHEMA.map((table: TableSpec) => {
    const unique = table.columns.filter((column) => column.unique).map((column) => `, ADD UNIQUE (${column.name})`)
    return `ALTER TABLE ${table.name} ADD PRIMARY KEY (${table.primaryKey.join(', ')})${unique.join('')};`
  })
  return `\n${keys.join('\n')}\n`
}
