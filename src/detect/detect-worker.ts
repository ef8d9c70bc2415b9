import {parentPort, workerData} from 'node:worker_threads'

import {SqliteConnection} from '../inventory/sqlite-connection.js'
import type {RuleName} from '../tools/catalogue.js'
import {postingPass} from './sqlite-detector.js'

/*
 * The posting pass of a whole-inventory detection, on its own read-only connection so that it
 * runs on a second core while the calling thread runs the part pass (see sqlite-detector.ts).
 */
const {path, rules} = workerData as {path: string; rules: RuleName[]}
const db = new SqliteConnection(path, {readOnly: true})
try {
  parentPort!.postMessage(postingPass(db, new Set(rules)))
} finally {
  db.close()
}
