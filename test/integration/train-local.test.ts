import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {delimiter, dirname, join, resolve} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ModelTemplate} from '../../src/dataset/token-count.js'
import {ExternalToolError} from '../../src/errors.js'
import {findLlamaBinary} from '../../src/llama/locate.js'
import {readManifest} from '../../src/models/manifest.js'
import {locateLlamaConversion} from '../../src/train/bundle.js'
import {trainJobLogs, trainJobStatus} from '../../src/train/job-control.js'
import {loadJob} from '../../src/train/job-store.js'
import {runTrainJob, type TrainJobOptions} from '../../src/train/run-job.js'
import {temporaryDirectory} from '../helpers/cli.js'
import {writeTinyGguf} from '../helpers/tiny-gguf.js'
import {buildFixtureTrainer, fixtureGpuBin, fixtureTrainer, writePlaybookDataset} from '../helpers/train-fixture.js'
import {fixtureTrainerGguf} from '../helpers/train-fixture-gguf.js'

/*
 * The same job bundle run by `--runner local` (run.sh in a local bash, detached) and by hand
 * (`--runner bundle`, then `--resume JOB --results DIR`), with the FIXTURE trainer (no GPU here)
 * and the FIXTURE nvidia-smi first on PATH. Quantizing uses the real llama-quantize.
 */

let skipReason: string | undefined
try {
  await findLlamaBinary('llama-quantize')
  await locateLlamaConversion()
} catch (error) {
  skipReason = `${(error as Error).message} → run \`node bin/run.js llama build\` first`
  console.warn(`SKIPPING the local training integration tests: ${skipReason}`)
}

describe.skipIf(skipReason !== undefined)('train with --runner local and --runner bundle (fixture trainer)', () => {
  let trainerFile: string
  let work: string
  let dataset: string
  let savedPath: string | undefined

  beforeAll(async () => {
    savedPath = process.env.PATH
    // run.sh's preflight finds the FIXTURE nvidia-smi; the fixture trainer finds this node.
    process.env.PATH = [fixtureGpuBin(40_000), dirname(process.execPath), process.env.PATH].join(delimiter)
    trainerFile = await buildFixtureTrainer()
    work = temporaryDirectory('invagent-train-local-')
    dataset = writePlaybookDataset(join(work, 'playbook.jsonl'), 8)
    writeFileSync(
      join(work, 'train.yaml'),
      'runtime:\n  install: false\n  minFreeVramGiB: 8\n  minFreeDiskGiB: 0\nquant: Q8_0\n',
    )
  }, 60_000)

  afterAll(() => {
    process.env.PATH = savedPath
  })

  function options(jobsDir: string, extra: Partial<TrainJobOptions>): TrainJobOptions {
    return {
      jobsDir: join(work, jobsDir),
      modelsDir: join(work, 'models'),
      adaptersDir: join(work, 'adapters'),
      renderer: 'silent',
      createdBy: 'invagent train (test)',
      ...extra,
    }
  }

  it(
    'runs locally; a stage that fails is fixed and the job resumes after the last finished stage',
    {timeout: 120_000},
    async () => {
      const failing = runTrainJob(
        options('jobs-local', {
          dataset,
          runner: 'local',
          configFile: join(work, 'train.yaml'),
          name: 'local-run',
          trainer: fixtureTrainer(trainerFile, {steps: 3, stepMs: 50, failStage: 'merge'}),
        }),
      )
      const error = await failing.catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(ExternalToolError)
      expect((error as Error).message).toContain('the merge stage failed on this machine: fixture failure in merge')
      const jobId = readdir(join(work, 'jobs-local'))[0]
      let job = loadJob(join(work, 'jobs-local'), jobId)
      expect(job.status).toBe('failed')
      expect(job.remoteDir).toBe(join(work, 'jobs-local', jobId, 'work'))
      expect([job.stages.train.status, job.stages.merge.status]).toEqual(['done', 'failed'])

      // The fix: the trainer no longer fails. The rerun skips what is done.
      writeFileSync(join(job.remoteDir, 'fixture.json'), JSON.stringify({steps: 3, stepMs: 50}))
      const events: string[] = []
      const result = await runTrainJob(
        options('jobs-local', {
          resume: jobId,
          onEvent: (event) => events.push(`${event.event}:${String(event.stage ?? '')}`),
        }),
      )
      expect(result.status).toBe('complete')
      expect(events.filter((event) => event.startsWith('stage-'))).toEqual([
        'stage-skipped:preflight',
        'stage-skipped:environment',
        'stage-skipped:train',
        'stage-start:merge',
        'stage-done:merge',
        'stage-start:convert',
        'stage-done:convert',
        'stage-start:verify',
        'stage-done:verify',
        'stage-start:checksum',
        'stage-done:checksum',
      ])
      expect(result.models.map((model) => [model.name, model.quantization])).toEqual([
        ['local-run-f16', 'F16'],
        ['local-run-q8_0', 'Q8_0'],
      ])
      expect(result.host).toBe('this machine')
      expect(readManifest(join(work, 'models', 'local-run-q8_0.json')).training).toMatchObject({runner: 'local', jobId})

      const status = await trainJobStatus(join(work, 'jobs-local'), jobId)
      expect(status).toMatchObject({
        status: 'complete',
        remote: {exists: true, running: false, status: {status: 'complete'}},
      })
      const logs = await trainJobLogs(join(work, 'jobs-local'), jobId, {lines: 5})
      expect(logs.source).toBe('host')
      expect(logs.lines.at(-1)).toBe('@@invagent {"event":"job-complete"}')
      // --follow on a finished job prints the end and returns.
      const followed: string[] = []
      const follow = await trainJobLogs(join(work, 'jobs-local'), jobId, {
        lines: 3,
        follow: true,
        onLine: (line) => followed.push(line),
      })
      expect(follow.source).toBe('host')
      expect(followed).toHaveLength(3)
      expect(followed.at(-1)).toBe('@@invagent {"event":"job-complete"}')
      job = loadJob(join(work, 'jobs-local'), jobId)
      expect(job.results.registered).toEqual(['local-run-f16', 'local-run-q8_0'])
    },
  )

  it('runs a bundle by hand, then imports its results with --resume --results', {timeout: 180_000}, async () => {
    // The result of a real run records a probe chat and the ids training saw; the check stage
    // tokenizes it with llama.cpp from the fetched GGUF (the same file the fixture writes).
    const probeText =
      '<|system|>\nYou audit.<|end|>\n<|user|>\nFinding on P-000123<|end|>\n<|assistant|>\n{"tool": "get_part"}<|end|>\n'
    const gguf = join(temporaryDirectory(), 'fixture.gguf')
    writeTinyGguf(gguf, fixtureTrainerGguf('Fixture run'))
    const template = await ModelTemplate.load(gguf)
    const probe = {text: probeText, ids: template.tokenizeText(probeText)}
    await template.dispose()
    expect(probe.ids.length).toBeGreaterThan(10)
    const trainer = fixtureTrainer(trainerFile, {steps: 2, stepMs: 20, probe, ggufName: 'Fixture run'})
    const bundled = await runTrainJob(
      options('jobs-bundle', {
        dataset,
        runner: 'bundle',
        configFile: join(work, 'train.yaml'),
        name: 'by-hand',
        trainer,
      }),
    )
    expect(bundled.status).toBe('bundled')
    expect(bundled.commands.join('\n')).toContain(`--resume ${bundled.jobId} --results`)

    // "The GPU machine": unpack, check, run — as the printed commands say.
    const host = join(temporaryDirectory(), bundled.jobId)
    mkdirSync(host)
    execFileSync('tar', ['-xzf', bundled.bundle!.tarball, '-C', host])
    execFileSync('sha256sum', ['--check', '--quiet', 'SHA256SUMS'], {cwd: host})
    const log = execFileSync('bash', ['run.sh'], {cwd: host, encoding: 'utf8'})
    expect(log).toContain('@@invagent {"event":"job-complete"}')
    // A rerun of a finished job skips every stage.
    expect(execFileSync('bash', ['run.sh'], {cwd: host, encoding: 'utf8'}).match(/stage-skipped/g)).toHaveLength(7)

    expect(JSON.parse(readFileSync(join(host, 'out', 'verify.json'), 'utf8'))).toMatchObject({
      ok: true,
      name: 'Fixture run',
    })
    // The GPU smoke test's report, read off the same kind of job folder.
    writeFileSync(join(host, 'run.log'), log)
    const report = JSON.parse(
      execFileSync('python3', [resolve(import.meta.dirname, '../../scripts/gpu_smoke_report.py'), host, '0', '12'], {
        encoding: 'utf8',
      }),
    )
    expect(report).toMatchObject({status: 'complete', failedStage: null, install: 'none', mode: 'fixture', steps: 2})
    expect(report).toMatchObject({
      tokenizer: {loadedAs: 'fixture', probeTokens: probe.ids.length},
      gguf: {name: 'Fixture run', ok: true},
    })
    expect(report.trainLoss.first.loss).toBeGreaterThan(report.trainLoss.last.loss)
    expect(report.gguf.bytes).toBeGreaterThan(100_000)

    // Ids that llama.cpp does not reproduce stop the import before anything is registered.
    const metricsFile = join(host, 'out', 'metrics.json')
    const metrics = readFileSync(metricsFile, 'utf8')
    writeFileSync(
      metricsFile,
      JSON.stringify({...JSON.parse(metrics), probe: {text: probeText, ids: [...probe.ids.slice(0, -1), 7]}}),
    )
    const refused = await runTrainJob(options('jobs-bundle', {resume: bundled.jobId, results: host})).catch(
      (error: unknown) => error,
    )
    expect(String((refused as Error).message)).toMatch(
      /token_ids: a probe chat is \d+ tokens in llama\.cpp and \d+ in training, first different at token \d+/,
    )
    expect(existsSync(join(work, 'models', 'by-hand-f16.json'))).toBe(false)

    writeFileSync(metricsFile, metrics)
    const imported = await runTrainJob(options('jobs-bundle', {resume: bundled.jobId, results: host}))
    expect(imported.status).toBe('complete')
    expect(loadJob(join(work, 'jobs-bundle'), bundled.jobId).stages.check.detail).toContain('token_ids ✔')
    expect(imported.models.map((model) => model.name)).toEqual(['by-hand-f16', 'by-hand-q8_0'])
    const manifest = readManifest(join(work, 'models', 'by-hand-f16.json'))
    expect(manifest.training).toMatchObject({runner: 'bundle', steps: 2, mode: 'fixture'})
    expect(readFileSync(join(work, 'adapters', bundled.jobId, 'adapter_config.json'), 'utf8')).toContain('LORA')
  })
})

function readdir(path: string): string[] {
  return execFileSync('ls', [path], {encoding: 'utf8'}).trim().split('\n')
}
