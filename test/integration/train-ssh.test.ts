import {existsSync, readdirSync, readFileSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {TrainCancelOutput, TrainLogsOutput, TrainStatusOutput} from '../../src/cli/output-schemas.js'
import {ConfigError, ExternalToolError} from '../../src/errors.js'
import {findLlamaBinary} from '../../src/llama/locate.js'
import {readManifest} from '../../src/models/manifest.js'
import {listModels} from '../../src/models/registry.js'
import {locateLlamaConversion} from '../../src/train/bundle.js'
import {fetchVerified} from '../../src/train/fetch.js'
import {loadJob} from '../../src/train/job-store.js'
import {queryRemoteState, type JobEvent} from '../../src/train/remote-control.js'
import {runTrainJob, type TrainJobOptions} from '../../src/train/run-job.js'
import {SshTransport} from '../../src/train/transport.js'
import {runCli, sha256OfFile, temporaryDirectory} from '../helpers/cli.js'
import {findSshd, startTestSshServer, type TestSshServer} from '../helpers/sshd.js'
import {buildFixtureTrainer, fixtureGpuBin, fixtureTrainer, writePlaybookDataset} from '../helpers/train-fixture.js'

/*
 * `invagent train` over SSH against a real OpenSSH server on loopback (a temporary host key and
 * user key, a high port, the current user). The training stage is the FIXTURE trainer (no GPU
 * here): everything else is real — the bundle, sftp upload and unpacking with sha256 checks,
 * run.sh with its preflight (against a FIXTURE nvidia-smi) and stage markers, the streamed log,
 * a connection killed mid-stage and resumed, the resumable sha256-checked fetch, the local GGUF
 * check, llama-quantize and registration.
 */

let skipReason: string | undefined
if (!findSshd()) skipReason = 'sshd is not installed (apt-get install -y openssh-server)'
try {
  await findLlamaBinary('llama-quantize')
  await locateLlamaConversion()
} catch (error) {
  skipReason ??= `${(error as Error).message} → run \`node bin/run.js llama build\` first`
}
if (skipReason) console.warn(`SKIPPING the train-over-SSH integration tests: ${skipReason}`)

describe.skipIf(skipReason !== undefined)('train over SSH (real sshd on loopback, fixture trainer)', () => {
  let server: TestSshServer
  let trainerFile: string
  let work: string
  let dataset: string
  let evalDataset: string

  beforeAll(async () => {
    server = await startTestSshServer({pathDirs: [fixtureGpuBin(80_000)]})
    trainerFile = await buildFixtureTrainer()
    work = temporaryDirectory('invagent-train-ssh-')
    dataset = writePlaybookDataset(join(work, 'datasets', 'playbook.jsonl'), 12)
    evalDataset = writePlaybookDataset(join(work, 'datasets', 'eval.jsonl'), 4, 'eval')
    writeFileSync(
      join(work, 'train.yaml'),
      'runtime:\n  install: false\n  minFreeVramGiB: 16\n  minFreeDiskGiB: 0\nlora:\n  r: 8\nquant: Q4_K_M\n',
    )
  }, 120_000)

  afterAll(async () => {
    await server?.stop()
  })

  function options(extra: Partial<TrainJobOptions>): TrainJobOptions {
    return {
      jobsDir: join(work, 'jobs'),
      modelsDir: join(work, 'models'),
      adaptersDir: join(work, 'adapters'),
      renderer: 'silent',
      createdBy: 'invagent train --dataset datasets/playbook.jsonl (test)',
      host: {
        destination: server.destination,
        port: server.port,
        identity: server.identity,
        knownHosts: server.knownHosts,
      },
      remoteDir: join(server.directory, 'remote'),
      ...extra,
    }
  }

  it(
    'uploads, streams the log, survives a connection killed mid-train, resumes, fetches, checks, quantizes and registers',
    {timeout: 180_000},
    async () => {
      const events: JobEvent[] = []
      let dropped = 0
      const first = runTrainJob(
        options({
          dataset,
          evalDataset,
          configFile: join(work, 'train.yaml'),
          name: 'playbook-test',
          trainer: fixtureTrainer(trainerFile, {steps: 10, stepMs: 300}),
          onEvent: (event) => {
            events.push(event)
            if (event.event === 'loss' && event.step === 3 && dropped === 0) dropped = server.dropConnections()
          },
        }),
      )
      const error = await first.then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(dropped, 'the test killed the open connection').toBeGreaterThan(0)
      expect(error).toBeInstanceOf(ExternalToolError)
      expect((error as ExternalToolError).processExitCode).toBe(255)
      const jobId = loadJobIdFrom(join(work, 'jobs'))
      expect((error as ExternalToolError).suggestions.join('\n')).toContain(`invagent train --resume ${jobId}`)

      // Streamed while it ran: preflight read the (fixture) GPU, the stages ran in order, loss came in.
      expect(events.filter((event) => event.event === 'stage-done').map((event) => event.stage)).toEqual([
        'preflight',
        'environment',
      ])
      expect(events.find((event) => event.event === 'preflight-gpu')).toMatchObject({
        name: 'Fixture GPU 80GB',
        freeMiB: 80_000,
      })
      // (Lines already on their way when the connection died may still arrive.)
      const seen = events.filter((event) => event.event === 'loss').map((event) => Number(event.step))
      expect(seen).toEqual(Array.from({length: seen.length}, (_, index) => index + 1))
      expect(seen.length).toBeGreaterThanOrEqual(3)
      expect(seen.length).toBeLessThan(10)
      let job = loadJob(join(work, 'jobs'), jobId)
      expect(job.status).toBe('disconnected')
      expect(job.stages.train.status).toBe('running')
      expect(job.lastLoss).toMatchObject({step: seen.at(-1), totalSteps: 10})
      // Nothing secret travelled: the bundle holds the key's path nowhere, let alone the key.
      const key = readFileSync(server.identity, 'utf8')
      for (const name of ['config.json', 'job.env', 'run.sh', 'stages.sh']) {
        const text = readFileSync(join(job.bundle!.dir, name), 'utf8')
        expect(text).not.toContain(key.split('\n')[1])
        expect(text).not.toContain(server.identity)
      }

      // The job went on without the connection.
      const transport = new SshTransport({
        destination: server.destination,
        port: server.port,
        identity: server.identity,
        knownHosts: server.knownHosts,
      })
      const meanwhile = await queryRemoteState(transport, job.remoteDir)
      expect(meanwhile).toMatchObject({exists: true, bundle: true})
      expect(meanwhile.exists && meanwhile.done).toEqual(['environment', 'preflight'])

      const resumedEvents: JobEvent[] = []
      const result = await runTrainJob(options({resume: jobId, onEvent: (event) => resumedEvents.push(event)}))
      expect(result.status).toBe('complete')
      // Reattached where the stream stopped: every loss line exactly once across both runs, in order.
      const mirror = readFileSync(join(work, 'jobs', jobId, 'run.log'), 'utf8')
      const steps = [...mirror.matchAll(/"event":"loss".*?"step":(\d+)/g)].map((match) => Number(match[1]))
      expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      expect(resumedEvents.filter((event) => event.event === 'stage-done').map((event) => event.stage)).toEqual([
        'train',
        'merge',
        'convert',
        'verify',
        'checksum',
      ])
      expect(resumedEvents.find((event) => event.event === 'verified')).toMatchObject({
        ok: true,
        architecture: 'llama',
        vocabularySize: 288,
      })

      // Fetched and checked against the host's sha256, quantized, registered with its provenance.
      expect(result.models.map((model) => [model.name, model.quantization])).toEqual([
        ['playbook-test-f16', 'F16'],
        ['playbook-test-q4_k_m', 'Q4_K_M'],
      ])
      const remoteSha = (await transport.exec(`sha256sum ${job.remoteDir}/out/model.gguf`)).stdout.split(' ')[0]
      expect(sha256OfFile(result.models[0].path)).toBe(remoteSha)
      const manifest = readManifest(join(work, 'models', 'playbook-test-q4_k_m.json'))
      expect(manifest).toMatchObject({
        baseModel: 'microsoft/Phi-3-mini-4k-instruct',
        datasetSha256: sha256OfFile(dataset),
        parent: 'playbook-test-f16',
        quantization: 'Q4_K_M',
      })
      expect(manifest.training).toMatchObject({
        jobId,
        runner: 'ssh',
        evalDatasetSha256: sha256OfFile(evalDataset),
        mode: 'fixture',
        steps: 10,
        packages: {torch: 'fixture', bitsandbytes: null},
        pinned: {torch: '2.11.0', transformers: '4.57.6', peft: '0.17.1', bitsandbytes: '0.48.2'},
        adapter: join(work, 'adapters', jobId),
      })
      expect(manifest.training!.trainLoss).toBeCloseTo(2.5 / 3.5, 6)
      expect(manifest.training!.evalLoss).toBeCloseTo(2.5 / 3, 6)
      expect(manifest.training!.config).toMatchObject({lora: {r: 8, alpha: 32}, quant: 'Q4_K_M'})
      expect(manifest.training!.llamaCpp.tag).toBe((await locateLlamaConversion()).tag)
      expect(manifest.training!.gitCommit === null || /^[0-9a-f]{40}$/.test(manifest.training!.gitCommit)).toBe(true)
      expect(existsSync(join(work, 'adapters', jobId, 'adapter_config.json'))).toBe(true)
      expect(listModels(join(work, 'models')).models.map((model) => [model.name, model.status])).toEqual([
        ['playbook-test-f16', 'ok'],
        ['playbook-test-q4_k_m', 'ok'],
      ])
      job = loadJob(join(work, 'jobs'), jobId)
      expect(job.status).toBe('complete')
      expect(Object.values(job.stages).every((stage) => stage.status === 'done' || stage.status === 'skipped')).toBe(
        true,
      )

      // status and logs ask the host over SSH.
      const status = TrainStatusOutput.parse(
        (await runCli(['train', 'status', jobId, '--jobs-dir', join(work, 'jobs'), '--json'], work)).json,
      )
      expect(status).toMatchObject({
        status: 'complete',
        remote: {exists: true, running: false, status: {status: 'complete'}},
        models: ['playbook-test-f16', 'playbook-test-q4_k_m'],
      })
      const logs = TrainLogsOutput.parse(
        (await runCli(['train', 'logs', jobId, '--jobs-dir', join(work, 'jobs'), '--lines', '2', '--json'], work)).json,
      )
      expect(logs).toMatchObject({
        source: 'host',
        lines: [expect.stringContaining('stage-done'), '@@invagent {"event":"job-complete"}'],
      })
    },
  )

  it(
    'reruns only what is not done after the job is stopped on the host, and the trainer continues from its checkpoint',
    {timeout: 180_000},
    async () => {
      const events: JobEvent[] = []
      let cancelled: Promise<string> | undefined
      const jobsDir = join(work, 'jobs-cancel')
      const first = runTrainJob(
        options({
          jobsDir,
          dataset,
          configFile: join(work, 'train.yaml'),
          name: 'cancel-test',
          trainer: fixtureTrainer(trainerFile, {steps: 10, stepMs: 500}),
          onEvent: (event) => {
            events.push(event)
            if (event.event === 'loss' && event.step === 2 && !cancelled) {
              // `invagent train cancel JOB`, from another process, as a user would.
              cancelled = runCli(
                ['train', 'cancel', loadJobIdFrom(jobsDir), '--jobs-dir', jobsDir, '--grace', '10', '--json'],
                work,
              ).then((result) => TrainCancelOutput.parse(result.json).outcome)
            }
          },
        }),
      )
      await expect(first).rejects.toThrow(/cancelled on .* during train/)
      expect(await cancelled).toBe('cancelled')
      const jobId = loadJobIdFrom(jobsDir)
      expect(loadJob(jobsDir, jobId).status).toBe('cancelled')

      const resumed: JobEvent[] = []
      const result = await runTrainJob(options({jobsDir, resume: jobId, onEvent: (event) => resumed.push(event)}))
      expect(result.status).toBe('complete')
      expect(resumed.filter((event) => event.event === 'stage-skipped').map((event) => event.stage)).toEqual([
        'preflight',
        'environment',
      ])
      const resumedAt = resumed.find((event) => event.event === 'resumed')
      expect(resumedAt?.step).toBeGreaterThanOrEqual(2)
      expect(resumed.filter((event) => event.event === 'loss').map((event) => event.step)[0]).toBe(
        Number(resumedAt!.step) + 1,
      )
    },
  )

  it('refuses a host whose key is not known, or has changed, before sending anything', async () => {
    const unknown = new SshTransport({
      destination: server.destination,
      port: server.port,
      identity: server.identity,
      knownHosts: server.emptyKnownHosts,
    })
    await expect(unknown.exec('true')).rejects.toMatchObject({code: 'SSH_HOST_KEY_UNKNOWN'})
    const changed = new SshTransport({
      destination: server.destination,
      port: server.port,
      identity: server.identity,
      knownHosts: server.wrongKnownHosts,
    })
    const error = await changed.exec('true').catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).code).toBe('SSH_HOST_KEY_CHANGED')
    // accept-new records an unknown key on first contact…
    const learning = join(temporaryDirectory(), 'known_hosts')
    writeFileSync(learning, '')
    await new SshTransport({
      destination: server.destination,
      port: server.port,
      identity: server.identity,
      knownHosts: learning,
      acceptNewHostKey: true,
    }).exec('true')
    const hostKey = readFileSync(join(server.directory, 'host_key.pub'), 'utf8').split(' ')[1]
    expect(readFileSync(learning, 'utf8')).toContain(hostKey)
    // …but still refuses a changed one.
    await expect(
      new SshTransport({
        destination: server.destination,
        port: server.port,
        identity: server.identity,
        knownHosts: server.wrongKnownHosts,
        acceptNewHostKey: true,
      }).exec('true'),
    ).rejects.toMatchObject({code: 'SSH_HOST_KEY_CHANGED'})
  })

  it('fetches resumably and refuses a copy whose sha256 does not match', async () => {
    const transport = new SshTransport({
      destination: server.destination,
      port: server.port,
      identity: server.identity,
      knownHosts: server.knownHosts,
    })
    const remote = join(server.directory, 'fetch-source.bin')
    const content = Buffer.alloc(3 * 1024 * 1024)
    for (let index = 0; index < content.length; index++) content[index] = (index * 7919) % 251
    writeFileSync(remote, content)
    const dest = join(temporaryDirectory(), 'fetched.bin')

    // Half of it arrived earlier: the rest is appended.
    writeFileSync(`${dest}.partial`, content.subarray(0, content.length / 2))
    const resumed = await fetchVerified(transport, remote, dest)
    expect(resumed.resumedFrom).toBe(content.length / 2)
    expect(readFileSync(dest).equals(content)).toBe(true)

    // A partial copy with wrong bytes: the result does not match, is deleted, and the next try succeeds.
    const second = join(temporaryDirectory(), 'fetched.bin')
    const wrong = Buffer.from(content.subarray(0, 1024 * 1024))
    wrong[10] ^= 0xff
    writeFileSync(`${second}.partial`, wrong)
    await expect(fetchVerified(transport, remote, second)).rejects.toThrow(
      /does not match the original .* The partial copy was deleted/,
    )
    expect(existsSync(`${second}.partial`)).toBe(false)
    expect(existsSync(second)).toBe(false)
    const fresh = await fetchVerified(transport, remote, second)
    expect(fresh.resumedFrom).toBe(0)
    expect(sha256OfFile(second)).toBe(sha256OfFile(remote))

    // A partial copy longer than the original is not a prefix of it: started over.
    const third = join(temporaryDirectory(), 'fetched.bin')
    writeFileSync(`${third}.partial`, Buffer.concat([content, Buffer.from('extra')]))
    expect((await fetchVerified(transport, remote, third)).resumedFrom).toBe(0)
    truncateSync(remote, 0)
  })

  it('fails preflight with a clear message on a GPU without enough free memory', {timeout: 60_000}, async () => {
    const poorServer = await startTestSshServer({pathDirs: [fixtureGpuBin(2_000)]})
    try {
      const error = await runTrainJob({
        ...options({
          dataset,
          configFile: join(work, 'train.yaml'),
          trainer: fixtureTrainer(trainerFile, {steps: 1, stepMs: 10}),
        }),
        jobsDir: join(work, 'jobs-preflight'),
        host: {
          destination: poorServer.destination,
          port: poorServer.port,
          identity: poorServer.identity,
          knownHosts: poorServer.knownHosts,
        },
        remoteDir: join(poorServer.directory, 'remote'),
      }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(ExternalToolError)
      expect((error as Error).message).toContain('the preflight stage failed')
      expect((error as Error).message).toContain(
        'GPU 0 (Fixture GPU 80GB) has 2000 MiB free of 81559 MiB, the job needs 16384 MiB (runtime.minFreeVramGiB)',
      )
      const job = loadJob(join(work, 'jobs-preflight'), loadJobIdFrom(join(work, 'jobs-preflight')))
      expect(job.status).toBe('failed')
      expect(job.stages.preflight.status).toBe('failed')
    } finally {
      await poorServer.stop()
    }
  })
})

function loadJobIdFrom(jobsDir: string): string {
  const ids = (readdirSyncSafe(jobsDir) ?? []).filter((name) => name.startsWith('train-'))
  if (ids.length !== 1) throw new Error(`expected one job in ${jobsDir}, found ${ids.join(', ')}`)
  return ids[0]
}

function readdirSyncSafe(path: string): string[] | undefined {
  try {
    return readdirSync(path)
  } catch {
    return undefined
  }
}
