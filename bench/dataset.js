// Dataset validation throughput: `dataset validate` on a generated 1,000,000-line playbook file
// against a bare loop of readline + JSON.parse + the same compiled ajv validator, in the same run,
// each in a child process of its own so peak memory (max RSS) is measured for each.
//
//   npm run bench            (builds first, then runs this file after the others)
//   node bench/dataset.js [lines]
//
// Prints a table and the JSON of the results, and writes it to bench/out/dataset.json.

import {spawnSync} from 'node:child_process'
import {createWriteStream, existsSync, mkdirSync, readFileSync, statSync} from 'node:fs'
import {once} from 'node:events'
import {join} from 'node:path'

import {OUT, ROOT, round, saveResults} from './common.js'

const LINES = Number(process.argv[2] ?? 1_000_000)
const TARGETS = {linesPerSecond: 100_000, ratio: 1.5}

/**
 * A file of distinct, valid examples: the shortest shipped examples of each rule, with ids,
 * entity numbers and quantities varied line by line so no two lines are duplicates.
 */
async function writeBenchFile(file, lines) {
  const shipped = readFileSync(join(ROOT, 'datasets', 'playbook.jsonl'), 'utf8')
    .trim()
    .split('\n')
  const shortest = new Map()
  for (const line of shipped) {
    const rule = JSON.parse(line).meta.rule
    if (!shortest.has(rule) || line.length < shortest.get(rule).length) shortest.set(rule, line)
  }
  const templates = [...shortest.values()]
  const stream = createWriteStream(file)
  for (let index = 0; index < lines; index++) {
    const template = templates[index % templates.length]
    const serial = String(index).padStart(7, '0')
    // Same id and entity pattern everywhere in the line, so the example stays consistent.
    const line = template
      .replace(/"id":"(train|eval)-[0-9a-f]{12}"/, `"id":"bench-${serial}"`)
      .replace(/P-(\d{6})/g, (_, digits) => `P-${String((Number(digits) + index) % 1_000_000).padStart(6, '0')}`)
    if (!stream.write(line + '\n')) await once(stream, 'drain')
  }
  stream.end()
  await once(stream, 'finish')
}

function runWorker(mode, file) {
  const result = spawnSync(process.execPath, [join(ROOT, 'bench', 'dataset-worker.js'), mode, file], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  })
  if (result.status !== 0) throw new Error(`${mode} failed: ${result.stderr}`)
  return JSON.parse(result.stdout.trim().split('\n').at(-1))
}

mkdirSync(OUT, {recursive: true})
const file = join(OUT, `dataset-${LINES}.jsonl`)
if (!existsSync(file)) {
  process.stderr.write(`writing ${LINES} lines to ${file}…\n`)
  await writeBenchFile(file, LINES)
}
const bytes = statSync(file).size
const baseline = runWorker('baseline', file)
const ours = runWorker('validate', file)
if (ours.problems !== 0)
  throw new Error(`the bench file should validate clean, got ${ours.problems} problems: ${ours.firstProblem}`)
const results = {
  lines: LINES,
  megabytes: round(bytes / 2 ** 20),
  bytesPerLine: Math.round(bytes / LINES),
  validate: {
    seconds: round(ours.ms / 1000, 2),
    linesPerSecond: Math.round(LINES / (ours.ms / 1000)),
    maxRssMB: ours.maxRssMB,
  },
  baseline: {
    seconds: round(baseline.ms / 1000, 2),
    linesPerSecond: Math.round(LINES / (baseline.ms / 1000)),
    maxRssMB: baseline.maxRssMB,
  },
}
results.ratio = round(ours.ms / baseline.ms, 2)
results.targets = TARGETS
results.met = {
  linesPerSecond: results.validate.linesPerSecond >= TARGETS.linesPerSecond,
  ratio: results.ratio <= TARGETS.ratio,
}

const rows = [
  ['measure', 'invagent dataset validate', 'JSON.parse + ajv loop', 'ratio', 'target'],
  [
    `${LINES.toLocaleString('en')} lines (${results.megabytes} MiB, ${results.bytesPerLine} B/line)`,
    `${results.validate.seconds} s`,
    `${results.baseline.seconds} s`,
    `${results.ratio}×`,
    `≤ ${TARGETS.ratio}×`,
  ],
  [
    'lines per second',
    results.validate.linesPerSecond.toLocaleString('en'),
    results.baseline.linesPerSecond.toLocaleString('en'),
    '',
    `≥ ${TARGETS.linesPerSecond.toLocaleString('en')}`,
  ],
  ['peak memory (max RSS)', `${results.validate.maxRssMB} MiB`, `${results.baseline.maxRssMB} MiB`, '', ''],
]
const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column])).join('  '))
saveResults('dataset.json', results)
