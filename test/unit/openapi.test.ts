import {readFileSync} from 'node:fs'
import {resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {SYNC_TABLE_NAMES} from '../../src/inventory/http/change-tracking.js'
import {openApiDocument} from '../../src/inventory/http/openapi.js'
import {TOOLS} from '../../src/tools/tools.js'

type Operation = {
  parameters?: Array<{name?: string; in?: string; required?: boolean; $ref?: string}>
  security?: unknown[]
  requestBody?: unknown
  responses: Record<string, unknown>
}
type Paths = Record<string, Record<string, Operation>>

const document = openApiDocument() as {
  openapi: string
  paths: Paths
  security: unknown
  components: {parameters: Record<string, {name: string; in: string; required: boolean}>}
}

describe('the REST contract (schemas/openapi.json)', () => {
  it('matches the committed document', () => {
    const committed = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../schemas/openapi.json'), 'utf8'))
    expect(
      document,
      'the REST contract changed; if intended, run `npm run schemas` and commit schemas/openapi.json',
    ).toEqual(committed)
  })

  it('is OpenAPI 3.1 with bearer auth everywhere but GET /health', () => {
    expect(document.openapi).toBe('3.1.0')
    expect(document.security).toEqual([{bearer: []}])
    expect(document.paths['/health'].get.security).toEqual([])
  })

  it('has a GET per read tool, with a query parameter per argument', () => {
    for (const tool of TOOLS.filter((candidate) => candidate.effect === 'read')) {
      const operation = document.paths[`/v1/tools/${tool.name}`]?.get
      expect(operation, tool.name).toBeDefined()
      expect(operation.parameters!.map((parameter) => parameter.name).sort()).toEqual(
        Object.keys(tool.args.shape).sort(),
      )
    }
  })

  it('has a POST per write tool that requires an Idempotency-Key header', () => {
    const key = document.components.parameters.IdempotencyKey
    expect(key).toMatchObject({name: 'Idempotency-Key', in: 'header', required: true})
    for (const tool of TOOLS.filter((candidate) => candidate.effect === 'write')) {
      const operation = document.paths[`/v1/tools/${tool.name}`]?.post
      expect(operation, tool.name).toBeDefined()
      expect(operation.parameters).toContainEqual({$ref: '#/components/parameters/IdempotencyKey'})
      expect(operation.requestBody).toBeDefined()
    }
    expect(Object.keys(document.paths).filter((path) => path.includes('/tools/'))).toHaveLength(
      TOOLS.filter((tool) => tool.effect !== 'terminal').length,
    )
  })

  it('has paged bulk reads with cursor and updated_since for every mirrored table and for deletions', () => {
    for (const table of [...SYNC_TABLE_NAMES, 'deletions']) {
      const names = document.paths[`/v1/sync/${table}`]?.get.parameters?.map((parameter) => parameter.name)
      expect(names, table).toEqual(['cursor', 'updated_since', 'limit'])
    }
  })

  it('answers every error with the one error shape', () => {
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const operation of Object.values(operations)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (!status.startsWith('2'))
            expect(response, `${path} ${status}`).toEqual({$ref: '#/components/responses/Error'})
        }
      }
    }
  })
})
