/**
 * Part families for the simulator: realistic names, units and pack conversions as a
 * distributor or plant maintenance store would carry them.
 */
export interface PartFamily {
  prefix: string
  uom: string
  names: string[]
  variants: string[]
  /** Pack units with their factor in the part's unit. */
  packs: Array<[uom: string, factor: number]>
  /** Typical movement size in the part's unit. */
  lot: [min: number, max: number]
}

export const PART_FAMILIES: PartFamily[] = [
  {
    prefix: 'FAS',
    uom: 'EA',
    names: ['Hex bolt', 'Hex nut', 'Flat washer', 'Wood screw', 'Socket cap screw', 'Spring washer', 'Blind rivet'],
    variants: ['M6 zinc', 'M8 zinc', 'M10 A2 stainless', 'M12 galvanised', '4x40', '5x60'],
    packs: [
      ['BX', 100],
      ['CS', 1000],
    ],
    lot: [20, 400],
  },
  {
    prefix: 'ELC',
    uom: 'EA',
    names: ['Cable tie', 'Glass fuse', 'Terminal block', 'LED panel', 'Contactor', 'Circuit breaker'],
    variants: ['200mm black', '5A', '4-pole', '600x600 4000K', '24V coil', 'C16 1P'],
    packs: [
      ['BX', 50],
      ['CS', 10],
    ],
    lot: [2, 80],
  },
  {
    prefix: 'PPE',
    uom: 'EA',
    names: ['Nitrile gloves', 'Safety glasses', 'Hi-vis vest', 'Ear plugs', 'Dust mask FFP2', 'Hard hat'],
    variants: ['size M', 'size L', 'size XL', 'clear', 'yellow', 'white'],
    packs: [
      ['CS', 12],
      ['PK', 6],
    ],
    lot: [2, 60],
  },
  {
    prefix: 'PKG',
    uom: 'EA',
    names: ['Carton', 'Stretch film', 'Packing tape', 'Pallet label', 'Void fill bag'],
    variants: ['400x300x200', '500mm 23my', '48mm brown', 'A5', 'large'],
    packs: [
      ['CS', 20],
      ['PLT', 500],
    ],
    lot: [10, 300],
  },
  {
    prefix: 'CHM',
    uom: 'L',
    names: ['Hydraulic oil', 'Cutting fluid', 'Degreaser', 'Gear oil'],
    variants: ['ISO 46', 'ISO 68', 'water based', 'EP 220'],
    packs: [
      ['DR', 208],
      ['CS', 20],
    ],
    lot: [5, 120],
  },
  {
    prefix: 'CBL',
    uom: 'M',
    names: ['Copper cable', 'Control cable', 'Earth wire'],
    variants: ['1.5mm2', '2.5mm2', '4G1.5', 'green-yellow 6mm2'],
    packs: [['ROLL', 100]],
    lot: [10, 300],
  },
  {
    prefix: 'RAW',
    uom: 'KG',
    names: ['PP granulate', 'Steel shot', 'Welding wire'],
    variants: ['natural', 'S230', 'SG2 1.0mm'],
    packs: [['BAG', 25]],
    lot: [25, 500],
  },
]
