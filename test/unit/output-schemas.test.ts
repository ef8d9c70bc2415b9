import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

import {outputJsonSchemas} from '../../src/cli/output-schemas.js'
import {datasetJsonSchemas} from '../../src/dataset/schema.js'

const SCHEMAS = resolve(import.meta.dirname, '../../schemas')

describe('--json output contracts', () => {
  it.each(Object.entries(outputJsonSchemas()))('%s matches its committed JSON Schema', (id, schema) => {
    const file = join(SCHEMAS, `output-${id.replaceAll(' ', '-')}.json`)
    const committed = JSON.parse(readFileSync(file, 'utf8'))
    expect(
      schema,
      `the --json output of "${id}" changed; if intended, run \`npm run schemas\` and commit ${file}`,
    ).toEqual(committed)
  })
})

describe('dataset format contracts', () => {
  it.each(Object.entries(datasetJsonSchemas()))('the %s format matches schemas/dataset-*.json', (format, schema) => {
    const committed = JSON.parse(readFileSync(join(SCHEMAS, `dataset-${format}.json`), 'utf8'))
    expect(schema, `the ${format} dataset format changed; if intended, run \`npm run schemas\``).toEqual(committed)
  })

  it("datasets/README.md shows the playbook's current JSON Schema", () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../datasets/README.md'), 'utf8')
    const block = /<!-- schema:playbook:start -->\n```json\n([\s\S]*?)\n```\n<!-- schema:playbook:end -->/.exec(readme)
    expect(block, 'datasets/README.md lost its schema block; run `npm run schemas`').not.toBeNull()
    expect(JSON.parse(block![1])).toEqual(datasetJsonSchemas().playbook)
  })
})
