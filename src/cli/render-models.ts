import {relative} from 'node:path'

import {formatBytes} from '../models/hash-progress.js'
import type {GgufInspection} from '../models/inspect-gguf.js'
import type {ModelList, RegisteredModel} from '../models/registry.js'
import type {VerifyModelsResult} from '../models/verify-models.js'
import {renderTable} from './table.js'

/** 3.82B, 110.9K: parameter counts as model cards write them. */
export function formatParameters(count: number): string {
  if (count >= 1e9) return `${(count / 1e9).toFixed(2)}B`
  if (count >= 1e6) return `${(count / 1e6).toFixed(1)}M`
  if (count >= 1e3) return `${(count / 1e3).toFixed(1)}K`
  return String(count)
}

/** Paths under the current folder are shown relative to it. */
function display(path: string): string {
  const relativePath = relative(process.cwd(), path)
  return relativePath !== '' && !relativePath.startsWith('..') ? relativePath : path
}

const STATUS_LABEL = {ok: 'ok', missing: 'MISSING', size_mismatch: 'SIZE MISMATCH'}

export function renderModelList(list: ModelList): string {
  const lines: string[] = []
  if (list.models.length > 0) {
    const rows = list.models.map((model) => [
      model.name,
      model.quantization,
      model.architecture,
      formatParameters(model.parameterCount),
      formatBytes(model.size),
      model.file,
      STATUS_LABEL[model.status],
    ])
    lines.push(renderTable(['name', 'quant', 'arch', 'params', 'size', 'file', 'file status'], rows, 60))
  }
  if (list.unregistered.length > 0) {
    lines.push('', 'GGUF files without a manifest (register with `invagent models add FILE`):')
    for (const file of list.unregistered) lines.push(`  ${file.file}  ${formatBytes(file.size)}`)
  }
  if (list.invalid.length > 0) {
    lines.push('', 'Manifests that do not validate (see `invagent models verify`):')
    for (const invalid of list.invalid) lines.push(...invalid.error.split('\n').map((line) => `  ${line}`))
  }
  if (lines.length === 0)
    return `No models in ${display(list.directory)}. Register one with \`invagent models add FILE.gguf\`.`
  lines.push('', `${list.models.length} registered model(s) in ${display(list.directory)}.`)
  return lines.join('\n').replace(/^\n/, '')
}

export function renderInspection(
  inspection: GgufInspection & {registryName: string | null; manifest: string | null},
): string {
  const number = (value: number | null) => (value === null ? '—' : value.toLocaleString('en-US'))
  const template = inspection.chatTemplate.firstLine
  const rows: Array<[string, string]> = [
    ['file', display(inspection.path)],
    [
      'registered as',
      inspection.registryName ? `${inspection.registryName} (${display(inspection.manifest!)})` : '— (not registered)',
    ],
    ['architecture', inspection.architecture],
    ['name', inspection.modelName ?? '—'],
    ['parameters', `${formatParameters(inspection.parameterCount)} (${number(inspection.parameterCount)})`],
    [
      'quantization',
      `${inspection.quantization} (tensors: ${Object.entries(inspection.tensorTypes)
        .map(([type, count]) => `${type} ×${count}`)
        .join(', ')})`,
    ],
    ['context length', number(inspection.contextLength)],
    ['embedding', `${number(inspection.embeddingLength)} × ${number(inspection.blockCount)} blocks`],
    ['vocabulary', `${number(inspection.vocabularySize)} tokens (${inspection.tokenizer ?? 'no'} tokenizer)`],
    ['tensors', number(inspection.tensorCount)],
    [
      'chat template',
      template === null ? 'none' : `yes: ${template.length > 72 ? template.slice(0, 71) + '…' : template}`,
    ],
    ['GGUF version', String(inspection.ggufVersion)],
    ['file size', `${formatBytes(inspection.fileSize)} (${number(inspection.fileSize)} bytes)`],
    ['sha256', inspection.sha256 ?? '— (--no-hash)'],
  ]
  const width = Math.max(...rows.map(([key]) => key.length))
  return rows.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n')
}

export function renderVerification(result: VerifyModelsResult): string {
  const lines: string[] = []
  const width = Math.max(0, ...result.models.map((model) => model.name.length))
  for (const model of result.models) {
    if (model.ok) lines.push(`ok      ${model.name.padEnd(width)}  ${model.file ? display(model.file) : ''}`.trimEnd())
    else {
      for (const problem of model.problems) {
        const [first, ...rest] = problem.message.split('\n')
        lines.push(`FAILED  ${model.name}: ${problem.check}: ${first}`, ...rest.map((line) => `        ${line}`))
      }
    }
  }
  for (const file of result.unregistered)
    lines.push(`note    ${file.file} has no manifest (register it with \`invagent models add ${display(file.path)}\`)`)
  const failed = result.models.filter((model) => !model.ok).length
  if (result.models.length === 0) lines.push(`No manifests in ${display(result.directory)}: nothing to verify.`)
  else
    lines.push(
      failed === 0
        ? `${result.models.length} model(s) verified.`
        : `${failed} of ${result.models.length} model(s) failed verification.`,
    )
  return lines.join('\n')
}

export function renderRegistration(registered: RegisteredModel): string {
  const {manifest} = registered
  return `Registered ${manifest.name}: ${manifest.architecture} ${manifest.quantization}, ${formatParameters(manifest.parameterCount)} parameters, ${formatBytes(manifest.size)}, sha256 ${manifest.sha256.slice(0, 12)}… → ${display(registered.manifestPath)}`
}
