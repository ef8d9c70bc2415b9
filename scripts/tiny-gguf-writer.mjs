// The tiny random-weight GGUF writer (test/helpers/tiny-gguf.ts) for scripts and benchmarks: it is
// TypeScript that lives with the tests, so it is compiled with the project's own tsc into a folder
// of the caller's choosing and imported from there.
import {spawnSync} from 'node:child_process'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Compiles the writer (and what it imports) into `build`; resolves to its `writeTinyGguf`. */
export async function loadTinyGgufWriter(build) {
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
  if (tsc.status !== 0) throw new Error(`compiling the GGUF writer failed:\n${tsc.stdout}${tsc.stderr}`)
  const {writeTinyGguf} = await import(pathToFileURL(join(build, 'test', 'helpers', 'tiny-gguf.js')).href)
  return writeTinyGguf
}
