import {relative} from 'node:path'

import type {QuantizeAndRegisterResult} from '../llama/quantize-register.js'
import {formatBytes} from '../models/hash-progress.js'
import type {CancelResult, JobStatusReport, listTrainJobs} from '../train/job-control.js'
import type {TrainJobResult} from '../train/run-job.js'
import {renderTable} from './table.js'

function display(path: string): string {
  const relativePath = relative(process.cwd(), path)
  return relativePath !== '' && !relativePath.startsWith('..') ? relativePath : path
}

function loss(value: number | null): string {
  return value === null ? '—' : value.toFixed(4)
}

/** The human view of `invagent train`. */
export function renderTrainResult(result: TrainJobResult): string {
  const lines: string[] = []
  if (result.dryRun || result.status === 'bundled') {
    lines.push(
      result.dryRun
        ? `Plan of job ${result.jobId} (dry run: the bundle is written, no host was contacted):`
        : `Job ${result.jobId}: bundle written, to be run by hand.`,
      '',
    )
    lines.push(
      renderTable(
        ['#', 'stage', 'where', 'what'],
        result.plan.map((stage, index) => [String(index + 1), stage.stage, stage.where, stage.description]),
        100,
      ),
    )
    if (result.bundle)
      lines.push(
        '',
        `Bundle: ${display(result.bundle.dir)}  (${display(result.bundle.tarball)}, ${formatBytes(result.bundle.size)}, sha256 ${result.bundle.sha256.slice(0, 12)}…)`,
      )
    if (result.commands.length > 0)
      lines.push(
        '',
        'To run it on a machine invagent cannot reach:',
        ...result.commands.map((command) => `  ${command}`),
      )
    else if (result.dryRun) lines.push('', `Run it: invagent train --resume ${result.jobId}`)
    return lines.join('\n')
  }
  lines.push(
    `Job ${result.jobId} complete on ${result.host ?? 'the host'}: train loss ${loss(result.trainLoss)}, eval loss ${loss(result.evalLoss)}.`,
  )
  if (result.models.length > 0) {
    lines.push(
      '',
      renderTable(
        ['model', 'quant', 'size', 'file'],
        result.models.map((model) => [model.name, model.quantization, formatBytes(model.size), display(model.path)]),
        80,
      ),
    )
  }
  if (result.adapterDir) lines.push('', `LoRA adapter: ${display(result.adapterDir)}`)
  if (result.warnings.length > 0)
    lines.push('', 'Warnings from the host:', ...[...new Set(result.warnings)].map((warning) => `  ${warning}`))
  const last = result.models.at(-1)
  if (last) lines.push('', `Use it: invagent audit --engine embedded --model ${last.name}`)
  return lines.join('\n')
}

/** The human view of `invagent train status JOB`. */
export function renderJobStatus(report: JobStatusReport): string {
  const lines = [
    `Job ${report.jobId}: ${report.status} (${report.runner}${report.host ? ` on ${report.host}` : ''}, created ${report.createdAt})`,
  ]
  if (report.remoteError)
    lines.push(`The host could not be asked: ${report.remoteError} (showing what was recorded here).`)
  else if (report.remote?.exists)
    lines.push(
      `On the host: ${report.remote.running ? 'running' : report.remote.status ? `${report.remote.status.status} (${report.remote.status.stage})` : 'not running'}, ${report.remote.logLines} log lines.`,
    )
  lines.push(
    '',
    renderTable(
      ['stage', 'status', 'detail'],
      report.stages.map((stage) => [stage.stage, stage.status, stage.detail ?? '']),
      80,
    ),
  )
  if (report.lastLoss)
    lines.push(
      '',
      `Last loss ${report.lastLoss.loss.toFixed(4)} at step ${report.lastLoss.step}/${report.lastLoss.totalSteps}${report.lastEvalLoss ? `; eval loss ${report.lastEvalLoss.loss.toFixed(4)} at step ${report.lastEvalLoss.step}` : ''}.`,
    )
  if (report.error) lines.push(`Stopped in ${report.error.stage}: ${report.error.message}`)
  if (report.models.length > 0) lines.push(`Models: ${report.models.join(', ')}`)
  if (report.next) lines.push(`Next: ${report.next}`)
  return lines.join('\n')
}

export function renderJobList(jobsDir: string, jobs: ReturnType<typeof listTrainJobs>): string {
  if (jobs.length === 0)
    return `No training jobs in ${display(jobsDir)}. Start one with \`invagent train --dataset datasets/playbook.jsonl --host user@gpu-box\`.`
  return renderTable(
    ['job', 'status', 'runner', 'created', 'model'],
    jobs.map((job) => [job.jobId, job.status, job.runner, job.createdAt, job.modelName]),
    60,
  )
}

export function renderCancel(result: CancelResult): string {
  switch (result.outcome) {
    case 'cancelled':
      return `Job ${result.jobId} stopped on the host. \`invagent train --resume ${result.jobId}\` continues it; finished stages are kept.`
    case 'killed':
      return `Job ${result.jobId} did not stop on request and was killed. \`invagent train --resume ${result.jobId}\` continues it.`
    default:
      return `Job ${result.jobId} was not running on the host; it is marked cancelled here.`
  }
}

export function renderQuantize(result: QuantizeAndRegisterResult): string {
  const {quantize, registered} = result
  return [
    `${display(quantize.input)} (${quantize.inputQuantization}, ${formatBytes(quantize.inputSize)}) → ${display(quantize.output)} (${quantize.type}, ${formatBytes(quantize.outputSize)}) in ${quantize.seconds} s`,
    `  ${quantize.bitsPerWeight} bits per weight (expected ${quantize.expectedBitsPerWeight.min}–${quantize.expectedBitsPerWeight.max}), ${quantize.tensorCount} tensors, sha256 ${quantize.sha256.slice(0, 12)}…`,
    `  registered as "${registered.manifest.name}"${registered.manifest.parent ? ` (parent ${registered.manifest.parent})` : ''}: ${display(registered.manifestPath)}`,
  ].join('\n')
}
