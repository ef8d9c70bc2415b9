// One measured pass over a dataset file, in its own process (see bench/dataset.js).
//   node bench/dataset-worker.js baseline|validate FILE
import {createReadStream} from 'node:fs'
import {createInterface} from 'node:readline'

import {datasetValidators} from '../dist/src/dataset/check.js'
import {validateDatasetFiles} from '../dist/src/dataset/validate.js'

const [mode, file] = process.argv.slice(2)
const started = performance.now()
let problems = 0
let firstProblem
if (mode === 'baseline') {
  const validate = datasetValidators().formats.playbook
  for await (const line of createInterface({
    input: createReadStream(file, {encoding: 'utf8', highWaterMark: 1 << 20}),
    crlfDelay: Infinity,
  })) {
    if (!validate(JSON.parse(line))) problems++
  }
} else {
  const report = await validateDatasetFiles([file], {problemLimit: 10})
  problems = Object.values(report.problemCounts).reduce((sum, count) => sum + count, 0)
  firstProblem = report.problems[0]?.message
}
const ms = performance.now() - started
console.log(
  JSON.stringify({mode, ms, problems, firstProblem, maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024)}),
)
