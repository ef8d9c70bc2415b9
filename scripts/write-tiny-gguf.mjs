// Writes the tiny random-weight GGUF the tests use (test/helpers/tiny-gguf.ts) to a path, for
// CI runs of model engines without a download:
//
//   node scripts/write-tiny-gguf.mjs OUT.gguf [--context 16384] [--seed 1]
//
// The writer is compiled once into a temporary folder (scripts/tiny-gguf-writer.mjs). Prints the
// file's path, size and sha256.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {parseArgs} from 'node:util'

import {loadTinyGgufWriter} from './tiny-gguf-writer.mjs'

const {values, positionals} = parseArgs({
  allowPositionals: true,
  options: {context: {type: 'string', default: '16384'}, seed: {type: 'string', default: '1'}},
})
if (positionals.length !== 1) {
  console.error('usage: node scripts/write-tiny-gguf.mjs OUT.gguf [--context 16384] [--seed 1]')
  process.exit(2)
}
const out = resolve(positionals[0])
const build = mkdtempSync(join(tmpdir(), 'invagent-tiny-gguf-'))
try {
  const writeTinyGguf = await loadTinyGgufWriter(build)
  const written = writeTinyGguf(out, {contextLength: Number(values.context), seed: Number(values.seed)})
  console.log(`${out}: ${written.fileSize} bytes, ${written.parameterCount} parameters, sha256 ${written.sha256}`)
} catch (error) {
  console.error(error.message)
  process.exitCode = 1
} finally {
  rmSync(build, {recursive: true, force: true})
}
