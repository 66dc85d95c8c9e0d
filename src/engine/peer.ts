// What one side knows about one peer it is connected to: its pieces, what we asked of it, what it asked of us.
import crypto from 'node:crypto'
import { Bitfield } from './bitfield.js'
import type { Wire } from './wire.js'

/** A piece being received from one peer: its blocks arrive in order and are hashed as they come. */
export interface Assembly {
  index: number
  length: number
  /** Offset of the next block expected. */
  next: number
  hash: crypto.Hash
  /** Its blocks' writes: the piece is stored once all have settled. */
  writes: Promise<void>[]
  /** When it was asked for: how long pieces take sets how long an idle spell must last to be starving. */
  askedAt: number
}

export class Peer {
  has: Bitfield
  /**
   * Pieces the peer told us of that we lacked then, in the order it told us: under the stripe policy
   * that is about file order, and the oldest offer is about the lowest piece we lack.
   */
  offers = { queue: [] as number[], head: 0 }
  /** Pieces asked of this peer, by index. */
  readonly assigned = new Map<number, Assembly>()
  /** Bytes asked of this peer and not yet received. */
  outstanding = 0
  /** Its requests waiting to be served, in order: [index, offset, length]. */
  readonly requests: [number, number, number][] = []
  /** A block is being read or sealed for it. */
  serving = false
  /** When a block last arrived (or the first request went out): the stall check goes by it. */
  lastBlockAt = Date.now()
  /** Bytes per second it delivered while asked for something (moving average); 0 until a block came. */
  rate = 0

  constructor(readonly wire: Wire, pieces: number, readonly isRunner: boolean) {
    // The runner has every piece and sends no bitfield.
    this.has = isRunner ? Bitfield.full(pieces) : new Bitfield(pieces)
  }
}
