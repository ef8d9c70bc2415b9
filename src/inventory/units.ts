/**
 * Units of measure: canonical codes and the spellings sync layers send instead. Shared by the
 * simulator (to produce realistic misspellings) and the rules playbook (to recognise them).
 */
export const UNIT_SPELLINGS: Record<string, string[]> = {
  EA: ['each', 'Each', 'ea', 'pcs', 'PCS', 'pc', 'piece'],
  CS: ['case', 'Case', 'cs', 'CASE', 'cse'],
  BX: ['box', 'Box', 'bx', 'BOX'],
  PK: ['pack', 'Pack', 'pk', 'PACK'],
  M: ['m', 'meter', 'metre', 'mtr'],
  L: ['l', 'litre', 'liter', 'ltr'],
  KG: ['kg', 'kilo', 'Kg', 'kgs'],
  ROLL: ['roll', 'Roll', 'rl'],
  BAG: ['bag', 'Bag', 'bg'],
  DR: ['drum', 'Drum', 'drm'],
  PLT: ['pallet', 'Pallet', 'plt'],
}

const CANONICAL = new Map<string, string>()
for (const [code, spellings] of Object.entries(UNIT_SPELLINGS)) {
  CANONICAL.set(code, code)
  for (const spelling of spellings) CANONICAL.set(spelling, code)
}

/** The canonical code of a unit spelling ("case" → "CS"), or undefined when it is no known unit. */
export function canonicalUnit(spelling: string): string | undefined {
  return (
    CANONICAL.get(spelling.trim()) ??
    CANONICAL.get(spelling.trim().toLowerCase()) ??
    CANONICAL.get(spelling.trim().toUpperCase())
  )
}
