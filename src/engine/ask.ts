// When a side asks which peer for which piece: the request loop's rules, free of sockets and clocks, shared by the swarm and the simulation.
import type { Bitfield } from './bitfield.js'
import type { Picker } from './picker.js'

/** Bytes asked of one peer at a time: enough to keep a fast wire busy, little enough to move work around. */
export const OUTSTANDING_BYTES = 2 * 1024 * 1024
/**
 * What is asked of a peer is what arrives in this long at the rate it delivers (at least one piece, at
 * most OUTSTANDING_BYTES): every byte asked for waits in that connection's one queue ahead of the
 * peer's `have`s, and through SSH ahead of the tracker's announces and the runner's messages too. With
 * 32 hosts on 20 Mbit/s links a wire carries ~80 KB/s, and 2 MiB asked of it delayed what the peer had
 * to say by 26 s; through SSH on 4 Mbit/s links the runner's messages waited 30 s and announces timed out.
 */
export const ASK_QUEUE_MS = 2000

/** A peer's delivery rate (bytes/s, moving average) once `bytes` arrived `ms` after what came (or was asked) before. */
export function nextRate(rate: number, bytes: number, ms: number): number {
  if (ms <= 0) return rate
  const sample = (bytes * 1000) / ms
  return rate ? rate + (sample - rate) / 4 : sample
}

/**
 * Nothing verified for this long, and at least twice as long as a piece takes to arrive, with the own
 * pieces in: ask the runner for other pieces. On slow links a piece takes seconds, and a shorter idle
 * spell only means the owner's copy is still on its way from the runner (asking again doubled the
 * runner's bytes: 1.58 copies at 8 hosts on 20 Mbit/s with a fixed 1 s).
 */
export const STARVING_MS = 1000
/** How often the swarm's clock runs (starving, stalled peers, idle wires). */
export const TICK_MS = 250
/** A peer that sent nothing of what we asked for this long is dropped and its pieces asked of others. */
export const STALL_MS = 30_000

/** What the rules need to know of one connected peer (the swarm's Peer has all of it). */
export interface PeerAsks {
  readonly isRunner: boolean
  has: Bitfield
  /** Pieces the peer offered that we lacked then, oldest first; `head` is the next to read. */
  offers: { queue: number[]; head: number }
  /** Bytes asked of this peer and not yet received. */
  outstanding: number
  /** Bytes per second it delivered while asked for something (nextRate); 0 until something came. */
  rate: number
}

/** One side's request state over the stripe policy of its Picker. */
export class Asker {
  private lastVerifiedAt: number
  /** How long a piece takes from request to verification (moving average). */
  private pieceMs = 0

  /**
   * `byTime` tells which peers are asked by time (ASK_QUEUE_MS at their rate) rather than by bytes: every
   * peer but the runner's direct wire, whose seeder's turns pace it.
   */
  constructor(readonly picker: Picker, private readonly pieceLength: (i: number) => number, now: number, private readonly byTime: (peer: PeerAsks) => boolean) {
    this.lastVerifiedAt = now
  }

  /** Bytes to have asked of `peer`: OUTSTANDING_BYTES, or by time what its rate brings in ASK_QUEUE_MS (one piece while unknown). */
  limit(peer: PeerAsks): number {
    if (!this.byTime(peer)) return OUTSTANDING_BYTES
    return Math.min(OUTSTANDING_BYTES, Math.max(this.pieceLength(0), (peer.rate * ASK_QUEUE_MS) / 1000))
  }

  /** A peer's bitfield: the pieces it has that we want are its offers. */
  bitfield(peer: PeerAsks): void {
    if (peer.isRunner) return
    for (let i = 0; i < peer.has.length; i++) if (peer.has.get(i) && this.picker.wanted(i)) peer.offers.queue.push(i)
  }

  /** A peer's `have` (already in its bitfield): true when it is an offer, so that peer is to be asked. */
  have(peer: PeerAsks, i: number): boolean {
    if (!this.picker.wanted(i)) return false
    peer.offers.queue.push(i)
    return true
  }

  /** A piece given back (its peer left or sent a bad copy): no longer in flight. */
  release(i: number): void {
    this.picker.release(i)
  }

  /** After `release`: offers piece i again to `peer` if it has it; true when that peer is to be asked. */
  reoffer(peer: PeerAsks, i: number): boolean {
    if (peer.isRunner || !peer.has.get(i)) return false
    peer.offers.queue.push(i)
    return true
  }

  /**
   * The next piece to ask `peer` for, or undefined: it has enough in flight, or offers nothing we want
   * (the runner: nothing the stripe policy asks it for now). The piece is taken and its bytes counted
   * as outstanding. `offeredByPeer` tells whether a connected peer other than the runner has piece i.
   */
  next(peer: PeerAsks, offeredByPeer: (i: number) => boolean): number | undefined {
    if (peer.outstanding >= this.limit(peer)) return undefined
    const i = peer.isRunner ? this.picker.fromRunner(offeredByPeer) : this.picker.fromPeer(peer.offers, peer.has)
    if (i === undefined) return undefined
    this.picker.take(i)
    peer.outstanding += this.pieceLength(i)
    return i
  }

  /** Piece i arrived whole and matched its hash, `askedAt` being when it was asked for. */
  verified(i: number, fromRunner: boolean, askedAt: number, now: number): void {
    this.pieceMs += (now - askedAt - this.pieceMs) / 8
    this.picker.verified(i)
    this.lastVerifiedAt = now
    // Only a peer's piece ends starving: the runner's would stop the very flow that feeds a host no peer
    // serves (one that reaches no other host got 96 MiB in 51 s instead of 8).
    if (!fromRunner) this.picker.starving = false
  }

  /** The clock: starving once the own pieces are in and nothing was verified for a while. */
  tick(now: number): void {
    if (!this.picker.starving) this.picker.starving = this.picker.ownDone && now - this.lastVerifiedAt > Math.max(STARVING_MS, 2 * this.pieceMs)
  }

  /** On the clock, whether an idle peer is to be asked (idle wires raise no events): the runner, and any peer with offers left. */
  idleAsk(peer: PeerAsks): boolean {
    return peer.isRunner || peer.offers.head < peer.offers.queue.length
  }
}
