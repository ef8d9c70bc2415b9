import {parentPort, workerData} from 'node:worker_threads'

import {createEngine} from '../engines/create-engine.js'
import type {Engine} from '../engines/engine.js'
import {InvagentError} from '../errors.js'
import {runScenario, type WorkerReply, type WorkerRequest, type WorkerSetup} from './runner.js'

/*
 * One job of the evaluation pool (see runner.ts): creates its own engine, then runs the scenarios
 * it is sent, one at a time, and answers each with its trials. An engine that cannot be created
 * is fatal for the run: the pool stops and the eval exits with the harness-error code.
 */

const setup = workerData as WorkerSetup
const port = parentPort!
const reply = (message: WorkerReply) => port.postMessage(message)

async function main(): Promise<void> {
  let engine: Engine
  try {
    engine = await createEngine(setup.engine)
  } catch (error) {
    reply({
      type: 'fatal',
      message: error instanceof Error ? error.message : String(error),
      code: error instanceof InvagentError ? error.code : 'ENGINE_UNAVAILABLE',
    })
    port.close()
    return
  }
  let queue = Promise.resolve()
  port.on('message', (request: WorkerRequest) => {
    queue = queue.then(async () => {
      if (request.type === 'close') {
        await engine.close?.()
        port.close()
        return
      }
      try {
        reply({
          type: 'done',
          index: request.index,
          results: await runScenario(request.scenario, request.index, engine, setup),
        })
      } catch (error) {
        reply({
          type: 'fatal',
          message: `scenario "${request.scenario.id}" stopped the evaluation: ${error instanceof Error ? error.message : String(error)}`,
          code: 'EVAL_WORKER',
        })
      }
    })
  })
  reply({type: 'ready'})
}

await main()
