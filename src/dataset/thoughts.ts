import type {Random} from '../util/random.js'
import {getTool} from '../tools/tools.js'

/*
 * Variety in the playbook's thoughts. The rules playbook states each step's reasoning one way;
 * a model trained on one phrasing per situation learns the phrasing rather than the reasoning.
 * Each thought keeps its content (ids, quantities, the diagnosis) and gets a varied lead-in and
 * verb, chosen by a seeded random so generation stays reproducible.
 */

const LEAD_INS: Record<'first' | 'read' | 'write' | 'resolve' | 'escalate', readonly string[]> = {
  first: ['', 'Facts first. ', 'Evidence before any fix. ', 'Diagnose first. ', 'Begin with a read. '],
  read: ['', '', 'Next, ', 'To narrow it down: ', 'More evidence: ', 'Still diagnosing. ', 'One more read. '],
  write: ['', 'The evidence is clear. ', 'Cause found. ', 'Safe to act within scope. ', 'Act on the diagnosis. '],
  resolve: [
    '',
    'Fixed; invagent will validate. ',
    'The fix is in place. ',
    'Done, pending validation. ',
    'That should clear it. ',
  ],
  escalate: [
    '',
    'This needs a human. ',
    'Not safe to fix automatically. ',
    'Escalate rather than guess. ',
    'Beyond a safe fix. ',
  ],
}

const VERBS: ReadonlyArray<readonly [RegExp, readonly string[]]> = [
  [/^Read /, ['Read ', 'Look up ', 'Fetch ', 'Open ']],
  [/^Look for /, ['Look for ', 'Search for ', 'Check for ']],
  [/^Compare /, ['Compare ', 'Check ', 'Contrast ']],
  [/^List /, ['List ', 'Pull ', 'Get ']],
  [/^First /, ['First ', 'To begin, ']],
]

function lowerFirst(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text[0].toLowerCase() + text.slice(1) : text
}

/** A varied wording of one step's thought; the content after the lead-in is kept verbatim. */
export function varyThought(random: Random, tool: string, thought: string, index: number): string {
  let body = thought
  for (const [pattern, alternatives] of VERBS) {
    if (pattern.test(body)) {
      body = body.replace(pattern, random.pick(alternatives))
      break
    }
  }
  const effect = getTool(tool)?.effect
  const kind =
    tool === 'resolve' || tool === 'escalate' ? tool : index === 0 ? 'first' : effect === 'write' ? 'write' : 'read'
  const lead = random.pick(LEAD_INS[kind])
  if (lead === '') return body
  return lead.endsWith(': ') || lead.endsWith(', ') ? lead + lowerFirst(body) : lead + body
}
