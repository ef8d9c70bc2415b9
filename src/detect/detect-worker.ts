import {parentPort, workerData} from 'node:worker_threads'

import {SqliteConnection} from '../inventory/sqlite-connection.js'
import type {RuleName} from '../tools/catalogue.js'
import {detectOnConnection} from './sqlite-detector.js'

/*
 * The second half of a whole-inventory detection (the rules whose queries may run on a second connection), on
 * its own read-only connection so that it runs on a second core while the calling thread runs the first half
 * (see sqlite-detector.ts).
 */
const {path, now, rules} = workerData as {path: string; now: number; rules: RuleName[]}
const db = new SqliteConnection(path, {readOnly: true})
try {
  parentPort!.postMessage(detectOnConnection(db, now, rules))
} finally {
  db.close()
}
