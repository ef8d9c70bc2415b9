import type {z} from 'zod'

import {toJsonSchema, type JsonSchema} from '../../tools/json-schema.js'
import {
  API_PREFIX,
  CONTRACT_VERSION,
  DeletionsPage,
  ErrorBody,
  HealthResponse,
  InfoResponse,
  READ_TOOLS,
  RESERVATION_PATH,
  ReservationQuery,
  ReservationResponse,
  ROWS_PATH,
  RowsQuery,
  RowsResponse,
  SYNC_ROW_SCHEMAS,
  SyncQuery,
  WRITE_TOOLS,
  syncPageSchema,
  syncPath,
  toolPath,
} from './contract.js'

/*
 * The OpenAPI 3.1 document of the REST contract, generated from the tool schema and the contract's
 * zod schemas (committed as schemas/openapi.json; `npm run schemas` regenerates it). OpenAPI 3.1
 * uses JSON Schema draft 2020-12, which is what zod emits, so schemas go in unchanged.
 */

const ERROR_RESPONSE = {$ref: '#/components/responses/Error'}

function jsonContent(schema: JsonSchema) {
  return {'application/json': {schema}}
}

function errorResponses(codes: number[]): Record<string, unknown> {
  return Object.fromEntries(codes.map((code) => [String(code), ERROR_RESPONSE]))
}

function queryParameters(schema: z.ZodObject): unknown[] {
  const json = toJsonSchema(schema, 'input') as {properties?: Record<string, JsonSchema>; required?: string[]}
  return Object.entries(json.properties ?? {}).map(([name, property]) => {
    const {description, ...rest} = property
    return {
      name,
      in: 'query',
      required: (json.required ?? []).includes(name),
      ...(description ? {description} : {}),
      schema: rest,
    }
  })
}

const RETRY_AFTER = {
  description: 'seconds to wait before retrying (429 and 503)',
  schema: {type: 'integer', minimum: 0},
}

/** The whole document: deterministic, so a test can compare it with the committed file. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, unknown> = {
    '/health': {
      get: {
        operationId: 'health',
        summary: 'Liveness: answers without a token.',
        security: [],
        responses: {
          '200': {description: 'the server is up', content: jsonContent(toJsonSchema(HealthResponse, 'output'))},
        },
      },
    },
    [`${API_PREFIX}/info`]: {
      get: {
        operationId: 'info',
        summary: "The inventory's identity, clock and latest change stamp.",
        responses: {
          '200': {description: 'inventory information', content: jsonContent(toJsonSchema(InfoResponse, 'output'))},
          ...errorResponses([401, 429, 500, 503]),
        },
      },
    },
  }
  for (const tool of READ_TOOLS) {
    paths[toolPath(tool.name)] = {
      get: {
        operationId: tool.name,
        summary: tool.description,
        tags: ['read tools'],
        parameters: queryParameters(tool.args),
        responses: {
          '200': {description: 'the tool result', content: jsonContent(toJsonSchema(tool.result, 'output'))},
          ...errorResponses([400, 401, 422, 429, 500, 503]),
        },
      },
    }
  }
  for (const tool of WRITE_TOOLS) {
    paths[toolPath(tool.name)] = {
      post: {
        operationId: tool.name,
        summary: tool.description,
        description:
          'Applied at most once per Idempotency-Key: a request repeated with the same key answers the recorded ' +
          'result (header Idempotent-Replayed: true) and applies nothing. The same key with other arguments is ' +
          'refused (422).',
        tags: ['write tools'],
        parameters: [
          {$ref: '#/components/parameters/IdempotencyKey'},
          {
            name: 'Invagent-Run-Id',
            in: 'header',
            required: false,
            description: 'the audit run, for the action log',
            schema: {type: 'string'},
          },
          {
            name: 'Invagent-Finding-Id',
            in: 'header',
            required: false,
            description: 'the finding, for the action log',
            schema: {type: 'string'},
          },
        ],
        requestBody: {required: true, content: jsonContent(toJsonSchema(tool.args, 'input'))},
        responses: {
          '200': {
            description: 'the write result (applied: false when it changed nothing)',
            headers: {
              'Idempotent-Replayed': {
                description: 'true when this is the recorded answer of an earlier request',
                schema: {type: 'string'},
              },
            },
            content: jsonContent(toJsonSchema(tool.result, 'output')),
          },
          ...errorResponses([400, 401, 422, 429, 500, 503]),
        },
      },
    }
  }
  paths[ROWS_PATH] = {
    get: {
      operationId: 'rows',
      summary:
        'The rows of a selection, sorted by key: parts (with conversions and aliases), whole ledgers, transactions, ' +
        'and transactions by external reference. What a plan reads whole, fingerprints, and reads again to apply.',
      tags: ['row reads'],
      parameters: Object.keys(RowsQuery.shape).map((name) => ({
        name,
        in: 'query',
        required: false,
        style: 'form',
        explode: true,
        description: RowsQuery.shape[name as keyof typeof RowsQuery.shape].description,
        schema: {type: 'array', items: {type: 'string'}},
      })),
      responses: {
        '200': {description: 'the rows', content: jsonContent(toJsonSchema(RowsResponse, 'output'))},
        ...errorResponses([400, 401, 429, 500, 503]),
      },
    },
  }
  paths[RESERVATION_PATH] = {
    get: {
      operationId: 'reservation',
      summary: 'One reservation row (422 tool_failed when it does not exist).',
      tags: ['row reads'],
      parameters: queryParameters(ReservationQuery),
      responses: {
        '200': {description: 'the reservation', content: jsonContent(toJsonSchema(ReservationResponse, 'output'))},
        ...errorResponses([400, 401, 422, 429, 500, 503]),
      },
    },
  }
  for (const [table, row] of Object.entries(SYNC_ROW_SCHEMAS)) {
    paths[syncPath(table)] = {
      get: {
        operationId: `sync_${table}`,
        summary:
          `Bulk read of ${table} for detection on a local mirror: pages in change order, ` +
          'optionally only rows changed after updated_since.',
        tags: ['bulk reads'],
        parameters: queryParameters(SyncQuery),
        responses: {
          '200': {description: 'one page', content: jsonContent(toJsonSchema(syncPageSchema(row), 'output'))},
          ...errorResponses([400, 401, 429, 500, 503]),
        },
      },
    }
  }
  paths[syncPath('deletions')] = {
    get: {
      operationId: 'sync_deletions',
      summary: 'Rows deleted after updated_since, by table and primary key, so that a mirror drops them too.',
      tags: ['bulk reads'],
      parameters: queryParameters(SyncQuery),
      responses: {
        '200': {description: 'one page', content: jsonContent(toJsonSchema(DeletionsPage, 'output'))},
        ...errorResponses([400, 401, 429, 500, 503]),
      },
    },
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'invagent inventory contract',
      version: CONTRACT_VERSION,
      description:
        'What invagent needs from an inventory system: the read tools, the write tools (idempotent under an ' +
        'Idempotency-Key), and paged bulk reads that let it mirror the inventory and run its detection rules ' +
        'locally. `invagent inventory serve` is the reference implementation.',
    },
    security: [{bearer: []}],
    paths,
    components: {
      securitySchemes: {
        bearer: {type: 'http', scheme: 'bearer', description: 'required whenever the server has a token'},
      },
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: true,
          description: '8 to 200 visible ASCII characters; the same key always means the same write',
          schema: {type: 'string', pattern: '^[\\x21-\\x7e]{8,200}$'},
        },
      },
      responses: {
        Error: {
          description: 'the one error shape',
          headers: {'Retry-After': RETRY_AFTER},
          content: jsonContent(toJsonSchema(ErrorBody, 'output')),
        },
      },
    },
  }
}
