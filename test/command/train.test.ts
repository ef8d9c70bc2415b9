import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {TrainCancelOutput, TrainLogsOutput, TrainOutput, TrainStatusOutput} from '../../src/cli/output-schemas.js'
import {locateLlamaConversion} from '../../src/train/bundle.js'
import {runCli, temporaryDirectory} from '../helpers/cli.js'
import {writePlaybookDataset} from '../helpers/train-fixture.js'

/** oclif wraps error messages at the terminal width and prefixes each line with " ›": undo both. */
function unwrapped(stderr: string): string {
  return stderr.replace(/\s*\n\s*›\s+/g, ' ').replace(/^\s*›\s+/, '')
}

// The bundle takes llama.cpp's conversion script from `invagent llama build`'s source (CI builds it first).
let llamaMissing: string | undefined
try {
  await locateLlamaConversion()
} catch (error) {
  llamaMissing = (error as Error).message
  console.warn(`SKIPPING the train command tests that write a bundle: ${llamaMissing}`)
}

beforeAll(() => {
  delete process.env.INVAGENT_TRAIN_DIR
  delete process.env.INVAGENT_MODELS_DIR
})

function workspace(): string {
  const cwd = temporaryDirectory()
  writePlaybookDataset(join(cwd, 'datasets', 'playbook.jsonl'), 6)
  writePlaybookDataset(join(cwd, 'datasets', 'eval.jsonl'), 2, 'eval')
  return cwd
}

describe('invagent train (no host contacted)', () => {
  it.skipIf(llamaMissing !== undefined)(
    '--dry-run writes the bundle, prints the plan and touches no host; status, logs and resume refusals follow',
    async () => {
      const cwd = workspace()
      writeFileSync(join(cwd, 'train.yaml'), 'lora:\n  r: 8\ntraining:\n  epochs: 1\n')
      // An address that cannot exist: a dry run must not try it.
      const result = await runCli(
        [
          'train',
          '--dataset',
          'datasets/playbook.jsonl',
          '--eval',
          'datasets/eval.jsonl',
          '--host',
          'nobody@host.invalid',
          '--config',
          'train.yaml',
          '--quant',
          'Q5_K_M',
          '--dry-run',
          '--json',
        ],
        cwd,
      )
      expect(result.exitCode, result.stderr).toBe(0)
      const output = TrainOutput.parse(result.json)
      expect(output).toMatchObject({
        dryRun: true,
        status: 'bundled',
        runner: 'ssh',
        host: 'nobody@host.invalid',
        models: [],
      })
      expect(output.plan.map((stage) => stage.stage)).toEqual([
        'validate',
        'export',
        'bundle',
        'upload',
        'start',
        'preflight',
        'environment',
        'train',
        'merge',
        'convert',
        'verify',
        'checksum',
        'fetch',
        'check',
        'quantize',
        'register',
      ])
      expect(output.plan.find((stage) => stage.stage === 'train')?.description).toContain('r 8, alpha 32')
      expect(output.plan.find((stage) => stage.stage === 'quantize')?.description).toContain('Q5_K_M')
      // The host runs offline with its own packages; the default base model is a Hub id, which it must already have.
      expect(output.plan.find((stage) => stage.stage === 'environment')?.description).toContain(
        "python3's own packages when they fit together",
      )
      expect(output.warnings.join('\n')).toContain(
        'baseModel microsoft/Phi-3-mini-4k-instruct is a Hugging Face id: the host runs offline',
      )
      expect(existsSync(join(output.bundle!.dir, 'run.sh'))).toBe(true)
      expect(existsSync(output.bundle!.tarball)).toBe(true)
      expect(output.jobDir).toBe(join(cwd, '.invagent', 'train', output.jobId))
      expect(
        readFileSync(join(output.bundle!.dir, 'data', 'train.jsonl'), 'utf8')
          .trim()
          .split('\n'),
      ).toHaveLength(6)
      expect(result.stderr).toContain('Build the job bundle')

      const list = TrainStatusOutput.parse((await runCli(['train', 'status', '--json'], cwd)).json)
      expect('jobs' in list && list.jobs.map((job) => [job.jobId, job.status])).toEqual([[output.jobId, 'bundled']])
      const status = await runCli(['train', 'status', output.jobId, '--json'], cwd)
      expect(status.exitCode, status.stderr).toBe(0)
      const report = TrainStatusOutput.parse(status.json)
      expect(report).toMatchObject({
        jobId: output.jobId,
        status: 'bundled',
        remote: null,
        next: `invagent train --resume ${output.jobId}`,
      })
      const human = await runCli(['train', 'status', output.jobId], cwd)
      expect(human.stdout).toContain(`Job ${output.jobId}: bundled (ssh on nobody@host.invalid`)
      const logs = TrainLogsOutput.parse((await runCli(['train', 'logs', output.jobId, '--json'], cwd)).json)
      expect(logs).toMatchObject({source: 'local', lines: []})

      const resumeWithData = await runCli(
        ['train', '--resume', output.jobId, '--dataset', 'datasets/playbook.jsonl'],
        cwd,
      )
      expect(resumeWithData.exitCode).toBe(2)
      expect(unwrapped(resumeWithData.stderr)).toContain('--resume continues a job as it was created')
      const typo = await runCli(['train', 'status', output.jobId.slice(0, -1) + 'x'], cwd)
      expect(typo.exitCode).toBe(2)
      expect(unwrapped(typo.stderr)).toContain(`did you mean "${output.jobId}"`)
    },
  )

  it.skipIf(llamaMissing !== undefined)(
    '--runner bundle prints the commands to run it by hand, and resuming asks for the results',
    async () => {
      const cwd = workspace()
      const result = await runCli(
        ['train', '--dataset', 'datasets/playbook.jsonl', '--runner', 'bundle', '--name', 'by-hand'],
        cwd,
      )
      expect(result.exitCode, result.stderr).toBe(0)
      expect(result.stdout).toContain('bundle written, to be run by hand')
      expect(result.stdout).toContain('bash run.sh')
      const jobId = /Job (train-\S+):/.exec(result.stdout)![1]
      expect(result.stdout).toContain(`invagent train --resume ${jobId} --results`)
      const resume = await runCli(['train', '--resume', jobId], cwd)
      expect(resume.exitCode).toBe(2)
      expect(unwrapped(resume.stderr)).toContain(
        'runs by hand (--runner bundle): bring its folder back and pass it with --results DIR',
      )
      const cancel = await runCli(['train', 'cancel', jobId, '--json'], cwd)
      expect(cancel.exitCode).toBe(2)
    },
  )

  it('reports config errors with their position before doing anything', async () => {
    const cwd = workspace()
    writeFileSync(join(cwd, 'train.yaml'), 'lora:\n  rank: 8\ntraining:\n  warmupRatio: 0.1\n  warmupSteps: 3\n')
    const result = await runCli(
      ['train', '--dataset', 'datasets/playbook.jsonl', '--runner', 'bundle', '--config', 'train.yaml'],
      cwd,
    )
    expect(result.exitCode).toBe(3)
    const message = unwrapped(result.stderr)
    expect(message).toContain('train.yaml:2:3: lora.rank: unknown key')
    expect(message).toContain(
      'train.yaml:5:16: training.warmupSteps: give either training.warmupSteps or training.warmupRatio, not both',
    )
    expect(existsSync(join(cwd, '.invagent', 'train'))).toBe(false)
  })

  it('refuses a dataset with errors, pointing at the line', async () => {
    const cwd = workspace()
    writeFileSync(
      join(cwd, 'datasets', 'broken.jsonl'),
      `${readFileSync(join(cwd, 'datasets', 'playbook.jsonl'), 'utf8')}{"messages": [\n`,
    )
    const result = await runCli(['train', '--dataset', 'datasets/broken.jsonl', '--runner', 'bundle'], cwd)
    expect(result.exitCode).toBe(2)
    expect(unwrapped(result.stderr)).toMatch(
      /the dataset has 1 problem\(s\); training needs a clean one: datasets\/broken\.jsonl:7:\d+:/,
    )
    // An example that is also in the eval set is leakage.
    const eval0 = readFileSync(join(cwd, 'datasets', 'eval.jsonl'), 'utf8').split('\n')[0]
    writeFileSync(
      join(cwd, 'datasets', 'leaky.jsonl'),
      `${readFileSync(join(cwd, 'datasets', 'playbook.jsonl'), 'utf8')}${eval0}\n`,
    )
    const leaky = await runCli(
      ['train', '--dataset', 'datasets/leaky.jsonl', '--eval', 'datasets/eval.jsonl', '--runner', 'bundle'],
      cwd,
    )
    expect(leaky.exitCode).toBe(2)
    expect(unwrapped(leaky.stderr)).toMatch(
      /datasets\/leaky\.jsonl:7:1: also in the eval set at (datasets\/)?eval\.jsonl:1/,
    )
  })

  it("refuses conversations over training.maxLength, measured in the base model's own tokenizer before any host", async () => {
    const cwd = workspace()
    writeFileSync(join(cwd, 'train.yaml'), 'training:\n  maxLength: 512\n')
    const result = await runCli(
      ['train', '--dataset', 'datasets/playbook.jsonl', '--runner', 'bundle', '--config', 'train.yaml'],
      cwd,
    )
    expect(result.exitCode).toBe(2)
    const message = unwrapped(result.stderr)
    // Phi-3 (the default base) is measured with Phi-3's vocabulary from llama.cpp's source.
    expect(message).toMatch(
      /the dataset has 6 problem\(s\); training needs a clean one: datasets\/playbook\.jsonl:1:1: \d+ tokens in ggml-vocab-phi-3\.gguf's tokenizer, over the limit of 512/,
    )
    expect(message).toContain('raise training.maxLength in the config')
    expect(existsSync(join(cwd, '.invagent', 'train'))).toBe(true)
    expect(existsSync(join(cwd, 'models'))).toBe(false)
  })

  it('asks where to run when neither --host nor --runner is given, and for a job id that exists', async () => {
    const cwd = workspace()
    const result = await runCli(['train', '--dataset', 'datasets/playbook.jsonl'], cwd)
    expect(result.exitCode).toBe(2)
    expect(unwrapped(result.stderr)).toContain('where should the job run?')
    const cancel = await runCli(['train', 'cancel', 'train-20260101-000000-0000', '--json'], cwd)
    expect(cancel.exitCode).toBe(2)
    expect(() => TrainCancelOutput.parse(cancel.json)).toThrow()
  })
})
