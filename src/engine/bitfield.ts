// Which pieces a side has: one bit per piece, most significant bit first (as BitTorrent's bitfield).

export class Bitfield {
  readonly bytes: Uint8Array
  private set_ = 0

  constructor(readonly length: number, bytes?: Uint8Array) {
    this.bytes = new Uint8Array(Math.ceil(length / 8))
    if (bytes) {
      this.bytes.set(bytes.subarray(0, this.bytes.length))
      // Bits past the last piece carry nothing.
      if (length % 8) this.bytes[this.bytes.length - 1]! &= 0xff << (8 - (length % 8))
      for (let i = 0; i < length; i++) if (this.get(i)) this.set_++
    }
  }

  get(i: number): boolean {
    return (this.bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0
  }

  /** Sets bit i; true when it was not set before. */
  set(i: number): boolean {
    if (i < 0 || i >= this.length || this.get(i)) return false
    this.bytes[i >> 3]! |= 0x80 >> (i & 7)
    this.set_++
    return true
  }

  clear(i: number): void {
    if (!this.get(i)) return
    this.bytes[i >> 3]! &= ~(0x80 >> (i & 7))
    this.set_--
  }

  /** How many bits are set. */
  get count(): number {
    return this.set_
  }

  get complete(): boolean {
    return this.set_ === this.length
  }

  static full(length: number): Bitfield {
    const b = new Bitfield(length)
    for (let i = 0; i < length; i++) b.set(i)
    return b
  }
}
