/*
 * A compact set of 64-bit fingerprints, each remembering where it was first seen (file, line):
 * 16 bytes per entry in typed arrays instead of a Map of strings, so duplicate detection over
 * millions of lines stays small. Two different values share a fingerprint with probability
 * about n²/2⁶⁵ (3·10⁻⁸ for a million lines, for well-mixed hashes).
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

  /**
   * Two 32-bit multiplicative hashes over the UTF-16 code units, mixed at the end: as strong as
   * needed for telling lines apart, and, unlike a digest, no UTF-8 copy of a long line. The range
   * [skipFrom, skipTo) is left out, so a line can be fingerprinted without its id, without
   * building the shorter string.
   */
  static fingerprint(text: string, skipFrom = text.length, skipTo = text.length): [number, number] {
    let h1 = 0xdeadbeef ^ (text.length - (skipTo - skipFrom))
    let h2 = 0x41c6ce57
    for (let index = 0; index < text.length; index++) {
      if (index === skipFrom) {
        index = skipTo - 1
        continue
      }
      const code = text.charCodeAt(index)
      h1 = Math.imul(h1 ^ code, 2654435761)
      h2 = Math.imul(h2 ^ code, 1597334677)
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
    // A zero high word marks an empty slot, so it is never produced.
    return [h1 >>> 0 || 1, h2 >>> 0]
  }

  /**
   * Adds a fingerprint (computed by `fingerprint`, possibly on another thread); returns where the
   * same fingerprint was first seen, or undefined when it is new.
   */
  addOrGet(high: number, low: number, file: number, line: number): {file: number; line: number} | undefined {
    const capacity = this.slots.length / 4
    let slot = (high ^ Math.imul(low, 0x9e3779b1)) & (capacity - 1)
    while (this.slots[slot * 4] !== 0) {
      if (this.slots[slot * 4] === high && this.slots[slot * 4 + 1] === low)
        return {file: this.slots[slot * 4 + 2], line: this.slots[slot * 4 + 3]}
      slot = (slot + 1) & (capacity - 1)
    }
    this.slots[slot * 4] = high
    this.slots[slot * 4 + 1] = low
    this.slots[slot * 4 + 2] = file
    this.slots[slot * 4 + 3] = line
    if (++this.used * 10 > capacity * 7) this.grow()
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
