import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {outputJsonSchemas} from '../../src/cli/output-schemas.js'

const SCHEMAS = resolve(import.meta.dirname, '../../schemas')

describe('--json output contracts', () => {
  it.each(Object.entries(outputJsonSchemas()))('%s matches its committed JSON Schema', (id, schema) => {
    const file = join(SCHEMAS, `output-${id.replaceAll(' ', '-')}.json`)
    const committed = JSON.parse(readFileSync(file, 'utf8'))
    expect(schema, `the --json output of "${id}" changed; if intended, run \`npm run schemas\` and commit ${file}`).toEqual(committed)
  })
})
