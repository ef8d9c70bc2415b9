#!/usr/bin/env node
// The house style's 120 columns, for what Prettier cannot wrap (long strings, template literals,
// comments): every tracked .ts/.js/.mjs line over the limit is listed as FILE:LINE, exit 1.
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'

const LIMIT = 120
const files = execFileSync('git', ['ls-files', '-z', '*.ts', '*.js', '*.mjs'], {encoding: 'utf8'})
  .split('\0')
  .filter((file) => file !== '' && !file.startsWith('test/fixtures/'))
const over = []
for (const file of files) {
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, index) => {
      if ([...line].length > LIMIT) over.push(`${file}:${index + 1}: ${[...line].length} characters`)
    })
}
for (const line of over) console.error(line)
if (over.length > 0) {
  console.error(
    `${over.length} line(s) over ${LIMIT} characters: wrap them (Prettier cannot wrap strings or comments).`,
  )
  process.exit(1)
}
console.log(`line length: ${files.length} files within ${LIMIT} characters`)
