import {RULES, ROOT_CAUSE_NAMES, type RuleName} from '../tools/catalogue.js'
import {sha256Hex, canonicalJson} from '../util/canonical-json.js'
import {parseCallText} from './call-text.js'
import {checkExample} from './check.js'
import {TOOL_NAMES} from '../tools/tools.js'
import type {DatasetFormat, PlaybookExample} from './schema.js'

/*
 * Foreign formats into the playbook. Nothing is invented: a line converts only when it names a
 * finding (rule and entity), every step has an observation, and it ends in resolve or escalate;
 * otherwise the reason is reported and the line is left out.
 */

export type Conversion = {ok: true; example: PlaybookExample} | {ok: false; reason: string}

const ENTITY = /\b([PTR]-\d{3,})\b/
const ROOT_CAUSES: ReadonlySet<string> = new Set(ROOT_CAUSE_NAMES)

type Finding = PlaybookExample['input']['finding']

/** The finding an example is about: a finding object in its input, or a rule name and an entity id in its text. */
function findingOf(example: Record<string, unknown>): Finding | string {
  const input = example.input
  const candidates: unknown[] = [input, (input as Record<string, unknown> | undefined)?.finding]
  if (typeof input === 'string') {
    try {
      const parsed: unknown = JSON.parse(input)
      candidates.push(parsed, (parsed as Record<string, unknown> | null)?.finding)
    } catch {
      // plain text: searched below
    }
  }
  for (const candidate of candidates) {
    if (candidate === null || typeof candidate !== 'object') continue
    const object = candidate as Record<string, unknown>
    if (
      typeof object.rule === 'string' &&
      (RULES as readonly string[]).includes(object.rule) &&
      typeof object.entity === 'string'
    ) {
      const evidence =
        object.evidence !== null && typeof object.evidence === 'object' ? (object.evidence as Finding['evidence']) : {}
      const severity = object.severity === 'high' || object.severity === 'low' ? object.severity : 'medium'
      return {
        id: `${object.rule}:${object.entity}`,
        rule: object.rule as RuleName,
        entity: object.entity,
        severity,
        evidence,
      }
    }
  }
  const text = [
    typeof input === 'string' ? input : JSON.stringify(input ?? ''),
    String(example.instruction ?? ''),
  ].join('\n')
  const rule = RULES.find((name) => text.includes(name) || text.toLowerCase().includes(name.replaceAll('_', ' ')))
  const entity = ENTITY.exec(text)?.[1]
  if (!rule) return `names no rule (one of ${RULES.join(', ')}) in its input or instruction`
  if (!entity) return `names no entity (a part P-…, transaction T-… or reservation R-… id) for rule ${rule}`
  return {
    id: `${rule}:${entity}`,
    rule,
    entity,
    severity: 'medium',
    evidence: {report: typeof input === 'string' ? input : JSON.stringify(input ?? {})},
  }
}

function observationOf(value: unknown): PlaybookExample['trajectory'][number]['observation'] | undefined {
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) return undefined
  if (typeof value === 'object' && !Array.isArray(value) && 'ok' in value) {
    const object = value as Record<string, unknown>
    if (object.ok === true && 'result' in object) return {ok: true, result: object.result}
    if (object.ok === false && typeof object.error === 'string') return {ok: false, error: object.error}
  }
  if (typeof value === 'string') {
    try {
      const parsed: unknown = JSON.parse(value)
      if (parsed !== null && typeof parsed === 'object') return observationOf(parsed) ?? {ok: true, result: parsed}
    } catch {
      // free text stays text
    }
  }
  return {ok: true, result: value}
}

function finish(
  source: DatasetFormat,
  finding: Finding,
  instruction: string,
  steps: PlaybookExample['trajectory'],
  finalText: string | undefined,
  tools?: PlaybookExample['tools'],
): Conversion {
  if (steps.length === 0) return {ok: false, reason: 'has no steps'}
  const last = steps.at(-1)!.action
  if (last.tool !== 'resolve' && last.tool !== 'escalate')
    return {
      ok: false,
      reason: `ends with ${last.tool}, not with resolve or escalate; the outcome would have to be guessed`,
    }
  const rootCause =
    typeof last.args.root_cause === 'string' && ROOT_CAUSES.has(last.args.root_cause) ? last.args.root_cause : 'unknown'
  const summary = (finalText ?? '').trim() || String(last.args.summary ?? '').trim()
  if (!summary) return {ok: false, reason: 'has no final answer or summary'}
  const body = {
    instruction,
    input: {finding},
    ...(tools ? {tools} : {}),
    trajectory: steps,
    final: {outcome: last.tool === 'resolve' ? ('resolved' as const) : ('escalated' as const), summary},
    meta: {
      rule: finding.rule,
      rootCause: rootCause as PlaybookExample['meta']['rootCause'],
      split: 'train' as const,
      source: `converted:${source}`,
    },
  }
  const example = {id: `conv-${sha256Hex(canonicalJson(body)).slice(0, 12)}`, ...body} as PlaybookExample
  const {problems} = checkExample(example, 'playbook')
  if (problems.length > 0)
    return {
      ok: false,
      reason: `the converted example is not valid: ${problems[0].message}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`,
    }
  return {ok: true, example}
}

/** Converts one parsed example from a foreign format (or passes a playbook example through). */
export function toPlaybook(value: unknown, format: DatasetFormat): Conversion {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return {ok: false, reason: 'is not a JSON object'}
  const example = value as Record<string, unknown>
  if (format === 'playbook') return {ok: true, example: example as PlaybookExample}
  if (format === 'question')
    return {
      ok: false,
      reason: 'a question has no trajectory to convert (question files are for `invagent eval --questions`)',
    }
  const finding = findingOf(example)
  if (typeof finding === 'string') return {ok: false, reason: finding}
  const instruction = String(example.instruction ?? '').trim()
  if (!instruction) return {ok: false, reason: 'has no instruction'}
  if (format === 'trajectory') {
    const trajectory = Array.isArray(example.trajectory) ? (example.trajectory as Array<Record<string, unknown>>) : []
    const steps: PlaybookExample['trajectory'] = []
    for (const [index, step] of trajectory.entries()) {
      const action = (step?.action ?? {}) as {tool?: unknown; args?: unknown}
      if (typeof action.tool !== 'string') return {ok: false, reason: `step ${index + 1} has no tool`}
      const observation = observationOf(step.observation)
      if (!observation) return {ok: false, reason: `step ${index + 1} (${action.tool}) has no observation`}
      steps.push({
        thought: String(step.thought ?? '').trim() || `Call ${action.tool}.`,
        action: {tool: action.tool, args: (action.args ?? {}) as Record<string, unknown>},
        observation,
      })
    }
    const declared = Array.isArray(example.tools) ? (example.tools as PlaybookExample['tools']) : undefined
    // Tools that are all invagent's own need no declaration: the one tool schema checks them.
    const ownTools = declared?.every((tool) => (TOOL_NAMES as string[]).includes(tool.name))
    return finish(
      'trajectory',
      finding,
      instruction,
      steps,
      typeof example.final_answer === 'string' ? example.final_answer : undefined,
      ownTools ? undefined : declared,
    )
  }
  const {calls, problems} = parseCallText(String(example.output ?? ''), new Set(TOOL_NAMES))
  if (problems.length > 0) return {ok: false, reason: problems[0].message}
  const steps: PlaybookExample['trajectory'] = []
  for (const [index, call] of calls.entries()) {
    const terminal = call.tool === 'resolve' || call.tool === 'escalate'
    const observation =
      observationOf(call.observation) ??
      (terminal && index === calls.length - 1
        ? {ok: true as const, result: {[call.tool === 'resolve' ? 'resolved' : 'escalated']: true}}
        : undefined)
    if (!observation)
      return {
        ok: false,
        reason: `call ${index + 1} (${call.tool}) has no observation; the instruction format carries none unless an "Observation: …" line follows the call`,
      }
    steps.push({thought: call.thought || `Call ${call.tool}.`, action: {tool: call.tool, args: call.args}, observation})
  }
  return finish('instruction', finding, instruction, steps, undefined)
}
