// Which piece to ask which peer for: the slice policy that lets the runner send each piece about once.
import type { Bitfield } from './bitfield.js'

/** The pieces host `index` of `of` owns and takes from the runner first: the index-th 1/of of them. */
export function sliceOf(pieces: number, index: number, of: number): { first: number; last: number } {
  const n = Math.max(1, of)
  return { first: Math.floor((pieces * index) / n), last: Math.floor((pieces * (index + 1)) / n) - 1 }
}

/**
 * Host i of N owns the i-th slice of the pieces and fetches it first, from the runner; every other piece
 * it takes from the hosts that own it. Only once its own slice is in, and while its peers leave it idle
 * (`starving`), does it ask the runner for other pieces, so a slow or failed owner never stalls the rest.
 * It never asks the runner for a piece a peer offers: a host that starts late finds its slice spread.
 */
export class Picker {
  private readonly inFlight = new Set<number>()
  private missingInSlice = 0
  /** Set by the swarm's clock: own slice in and nothing verified for a while. */
  starving = false
  /** No piece below this one is missing: where scans start. */
  private lowestMissing = 0

  constructor(readonly have: Bitfield, readonly slice: { first: number; last: number }) {
    for (let i = slice.first; i <= slice.last; i++) if (!have.get(i)) this.missingInSlice++
    this.advance()
  }

  get sliceDone(): boolean {
    return this.missingInSlice <= 0
  }

  wanted(i: number): boolean {
    return !this.have.get(i) && !this.inFlight.has(i)
  }

  take(i: number): void {
    this.inFlight.add(i)
  }

  /** A piece given back: its peer left or sent a bad copy. */
  release(i: number): void {
    this.inFlight.delete(i)
  }

  verified(i: number): void {
    this.inFlight.delete(i)
    if (this.have.set(i) && i >= this.slice.first && i <= this.slice.last) this.missingInSlice--
    this.advance()
  }

  private advance(): void {
    while (this.lowestMissing < this.have.length && this.have.get(this.lowestMissing)) this.lowestMissing++
  }

  /**
   * The next piece to ask the runner for, or undefined. `offeredByPeer` tells whether an open peer
   * wire has the piece. The scan starts at the slice (or, starving, at the lowest missing piece).
   */
  fromRunner(offeredByPeer: (i: number) => boolean): number | undefined {
    const { first, last } = this.slice
    for (let i = Math.max(first, this.lowestMissing); i <= last; i++) {
      if (this.wanted(i) && !offeredByPeer(i)) return i
    }
    if (!this.starving || !this.sliceDone) return undefined
    // Past the slice: the pieces after it first (their owners are most likely the ones behind), then the rest.
    const n = this.have.length
    for (let k = 0; k < n; k++) {
      const i = (last + 1 + k) % n
      if (this.wanted(i) && !offeredByPeer(i)) return i
    }
    return undefined
  }

  /** The next piece to ask a peer for from its queue of offers (consumed as it goes), or undefined. */
  fromPeer(offers: { queue: number[]; head: number }, peerHas: Bitfield): number | undefined {
    while (offers.head < offers.queue.length) {
      const i = offers.queue[offers.head++]!
      if (this.wanted(i) && peerHas.get(i)) {
        if (offers.head > 1024 && offers.head * 2 > offers.queue.length) {
          offers.queue = offers.queue.slice(offers.head)
          offers.head = 0
        }
        return i
      }
    }
    offers.queue = []
    offers.head = 0
    return undefined
  }
}
