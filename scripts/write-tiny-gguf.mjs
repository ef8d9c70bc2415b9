// Writes the tiny random-weight GGUF the tests use (test/helpers/tiny-gguf.ts) to a path, for
// CI runs of model engines without a download:
//
//   node scripts/write-tiny-gguf.mjs OUT.gguf [--context 16384] [--seed 1]
//
// The writer is TypeScript that lives with the tests; it is compiled once into a temporary
// folder with the project's own tsc. Prints the file's path, size and sha256.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {parseArgs} from 'node:util'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
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
  const tsc = spawnSync(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      'test/helpers/tiny-gguf.ts',
      '--ignoreConfig',
      '--outDir',
      build,
      '--rootDir',
      '.',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2023',
      '--types',
      'node',
      '--skipLibCheck',
    ],
    {cwd: ROOT, encoding: 'utf8'},
  )
  if (tsc.status !== 0) {
    console.error(`compiling the GGUF writer failed:\n${tsc.stdout}${tsc.stderr}`)
    process.exit(1)
  }
  const {writeTinyGguf} = await import(pathToFileURL(join(build, 'test', 'helpers', 'tiny-gguf.js')).href)
  const written = writeTinyGguf(out, {contextLength: Number(values.context), seed: Number(values.seed)})
  console.log(`${out}: ${written.fileSize} bytes, ${written.parameterCount} parameters, sha256 ${written.sha256}`)
} finally {
  rmSync(build, {recursive: true, force: true})
}
