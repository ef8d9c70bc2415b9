import {parentPort} from 'node:worker_threads'

import {scanLine} from './line-scan.js'

/*
 * Scans batches of lines for `dataset validate` on a second core (see line-scan.ts). A batch
 * arrives as one string (the lines joined by newlines, which JSON text never contains raw) and
 * the ids and skip ranges beside it: one copy between threads instead of one per line.
 */
interface Batch {
  batch: number
  text: string
  skips: Int32Array
  ids: Array<string | null>
}

parentPort!.on('message', ({batch, text, skips, ids}: Batch) => {
  const lines = text.split('\n')
  parentPort!.postMessage({
    batch,
    results: lines.map((line, index) =>
      scanLine({
        text: line,
        skipFrom: skips[2 * index],
        skipTo: skips[2 * index + 1],
        ...(ids[index] === null ? {} : {id: ids[index]!}),
      }),
    ),
  })
})
