// Which piece to ask which peer for: the stripe policy that lets the runner send each piece about once.
import type { Bitfield } from './bitfield.js'

/** This host's place among the hosts: it owns every piece i with i mod `of` = `index`. */
export interface Stripe {
  index: number
  of: number
}

/** Whether host `stripe.index` of `stripe.of` owns piece i (takes it from the runner first). */
export function owns(stripe: Stripe, i: number): boolean {
  return i % Math.max(1, stripe.of) === stripe.index
}

/**
 * Host k of N owns every N-th piece from piece k on and fetches those first, from the runner; every
 * other piece it takes from the hosts that own it. Stripes rather than slices: every host moves through
 * the file front to back, so a peer asks for what its neighbour just verified (still in memory) and the
 * whole file's SHA-256 can follow the growing prefix. Only once its own pieces are in, and while its
 * peers leave it idle (`starving`), does a host ask the runner for other pieces, so a slow or failed
 * owner never stalls the rest. It never asks the runner for a piece a peer offers: a host that starts
 * late finds its pieces already spread.
 */
export class Picker {
  private readonly inFlight = new Set<number>()
  private missingOwn = 0
  /** Set by the swarm's clock: own pieces in and nothing verified for a while. */
  starving = false
  /** No piece below this one is missing: where scans start. */
  private lowestMissing = 0
  private readonly of: number

  constructor(readonly have: Bitfield, readonly stripe: Stripe) {
    this.of = Math.max(1, stripe.of)
    for (let i = 0; i < have.length; i++) if (owns(stripe, i) && !have.get(i)) this.missingOwn++
    this.advance()
  }

  get ownDone(): boolean {
    return this.missingOwn <= 0
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
    if (this.have.set(i) && owns(this.stripe, i)) this.missingOwn--
    this.advance()
  }

  private advance(): void {
    while (this.lowestMissing < this.have.length && this.have.get(this.lowestMissing)) this.lowestMissing++
  }

  /**
   * The next piece to ask the runner for, or undefined: the lowest own piece no peer offers; starving,
   * the lowest piece of any stripe no peer offers. `offeredByPeer` tells whether an open peer wire has it.
   */
  fromRunner(offeredByPeer: (i: number) => boolean): number | undefined {
    const n = this.have.length
    const from = this.lowestMissing
    for (let i = from + ((this.stripe.index - (from % this.of) + this.of) % this.of); i < n; i += this.of) {
      if (this.wanted(i) && !offeredByPeer(i)) return i
    }
    if (!this.starving || !this.ownDone) return undefined
    // Hosts that starve together start apart, so each asks the runner for other pieces and they trade.
    const span = n - from
    const start = from + Math.floor((span * this.stripe.index) / this.of)
    for (let k = 0; k < span; k++) {
      const i = start + k < n ? start + k : start + k - span
      if (this.wanted(i) && !offeredByPeer(i)) return i
    }
    return undefined
  }

  /** The next piece to ask a peer for from its offers, oldest first (consumed as it goes), or undefined. */
  fromPeer(offers: { queue: number[]; head: number }, peerHas: Bitfield): number | undefined {
    while (offers.head < offers.queue.length) {
      const i = offers.queue[offers.head++]!
      if (this.wanted(i) && peerHas.get(i)) {
        // Drop what was read once it is most of the queue, so it does not grow with the file.
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
