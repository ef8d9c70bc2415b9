import {createHash} from 'node:crypto'

/*
 * A compact set of 64-bit fingerprints, each remembering where it was first seen (file, line):
 * 16 bytes per entry in typed arrays instead of a Map of strings, so duplicate detection over
 * millions of lines stays small. Two different values share a fingerprint with probability
 * about n²/2⁶⁵ (3·10⁻⁸ for a million lines).
 */
export class FingerprintTable {
  private slots: Uint32Array
  private used = 0

  constructor(capacity = 1 << 12) {
    this.slots = new Uint32Array(capacity * 4)
  }

  get size(): number {
    return this.used
  }

  static fingerprint(text: string): [number, number] {
    const digest = createHash('sha1').update(text).digest()
    // A zero high word marks an empty slot, so it is never produced.
    return [digest.readUInt32LE(0) || 1, digest.readUInt32LE(4)]
  }

  /**
   * Adds the value's fingerprint; returns where the same fingerprint was first seen, or
   * undefined when it is new.
   */
  addOrGet(text: string, file: number, line: number): {file: number; line: number} | undefined {
    const [high, low] = FingerprintTable.fingerprint(text)
    const capacity = this.slots.length / 4
    let slot = (high ^ Math.imul(low, 0x9e3779b1)) & (capacity - 1)
    while (this.slots[slot * 4] !== 0) {
      if (this.slots[slot * 4] === high && this.slots[slot * 4 + 1] === low) return {file: this.slots[slot * 4 + 2], line: this.slots[slot * 4 + 3]}
      slot = (slot + 1) & (capacity - 1)
    }
    this.slots[slot * 4] = high
    this.slots[slot * 4 + 1] = low
    this.slots[slot * 4 + 2] = file
    this.slots[slot * 4 + 3] = line
    if (++this.used * 10 > capacity * 7) this.grow()
    return undefined
  }

  has(text: string): {file: number; line: number} | undefined {
    const [high, low] = FingerprintTable.fingerprint(text)
    const capacity = this.slots.length / 4
    let slot = (high ^ Math.imul(low, 0x9e3779b1)) & (capacity - 1)
    while (this.slots[slot * 4] !== 0) {
      if (this.slots[slot * 4] === high && this.slots[slot * 4 + 1] === low) return {file: this.slots[slot * 4 + 2], line: this.slots[slot * 4 + 3]}
      slot = (slot + 1) & (capacity - 1)
    }
    return undefined
  }

  private grow(): void {
    const old = this.slots
    this.slots = new Uint32Array(old.length * 2)
    const capacity = this.slots.length / 4
    for (let index = 0; index < old.length; index += 4) {
      if (old[index] === 0) continue
      let slot = (old[index] ^ Math.imul(old[index + 1], 0x9e3779b1)) & (capacity - 1)
      while (this.slots[slot * 4] !== 0) slot = (slot + 1) & (capacity - 1)
      this.slots.set(old.subarray(index, index + 4), slot * 4)
    }
  }
}
