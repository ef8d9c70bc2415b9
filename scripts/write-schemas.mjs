// Regenerates the committed JSON Schemas (tool catalogue and --json outputs) from the zod
// definitions. Run after an intentional change: `npm run schemas`.
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'

import {outputJsonSchemas} from '../dist/src/cli/output-schemas.js'
import {toolCatalogue} from '../dist/src/tools/json-schema.js'
import {datasetJsonSchemas} from '../dist/src/dataset/schema.js'
import {openApiDocument} from '../dist/src/inventory/http/openapi.js'

mkdirSync('schemas', {recursive: true})
writeFileSync('schemas/tools.json', JSON.stringify(toolCatalogue(), null, 2) + '\n')
// The REST contract an inventory server implements (`invagent inventory serve` is the reference).
writeFileSync('schemas/openapi.json', JSON.stringify(openApiDocument(), null, 2) + '\n')
for (const [id, schema] of Object.entries(outputJsonSchemas())) {
  writeFileSync(`schemas/output-${id.replaceAll(' ', '-')}.json`, JSON.stringify(schema, null, 2) + '\n')
}
for (const [format, schema] of Object.entries(datasetJsonSchemas())) {
  writeFileSync(`schemas/dataset-${format}.json`, JSON.stringify(schema, null, 2) + '\n')
}
// The playbook's JSON Schema, also in datasets/README.md between its markers.
const readmePath = 'datasets/README.md'
const readme = readFileSync(readmePath, 'utf8')
const block =
  '<!-- schema:playbook:start -->\n```json\n' +
  JSON.stringify(datasetJsonSchemas().playbook, null, 2) +
  '\n```\n<!-- schema:playbook:end -->'
writeFileSync(readmePath, readme.replace(/<!-- schema:playbook:start -->[\s\S]*<!-- schema:playbook:end -->/, block))
console.log('schemas/ and datasets/README.md updated')
