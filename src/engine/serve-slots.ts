// A side that serves many peers (the runner's seeder) sends to a few at a time, first copies of pieces first every other turn.

/**
 * Hosts the runner's seeder sends to at once (a block each per turn). Enough flows to fill a fast link;
 * few enough that on a slow one the SSH sessions still being opened get their share (at 200 hosts on
 * 4 Mbit/s, sending to all at once timed out 58 SSH connects).
 */
export const SERVING = 8

/**
 * Turns at sending, `max` peers at a time, one block per turn while others wait (the swarm ends a turn
 * once its block has left the process: about `max` flows carry the runner's bytes, plus what the kernel
 * still holds of earlier turns). Fewer flows at once leave room on a slow uplink for everything else on it (SSH sessions being opened, address lookups):
 * 200 hosts served at once starved the runner's own SSH connects on 4 Mbit/s. A waiting peer whose next
 * request is a piece never sent before goes first, so a piece's first copy leaves the runner before any
 * second one, and the hosts spread it between them; but only every other turn: the others go to the peer
 * that waited longest. With first copies always asked for by someone, a peer asking for pieces already
 * sent was never served (200 hosts: 49 hosts got no byte in 100 s with the runner's wire open).
 */
export class ServeSlots<P> {
  private readonly active = new Set<P>()
  private readonly waiting: P[] = []
  private turns = 0

  constructor(private readonly max: number, private readonly firstCopy: (peer: P) => boolean) {}

  /** Whether `peer` may send now; if not, it is in line. */
  admit(peer: P): boolean {
    if (this.active.has(peer)) return true
    if (this.active.size < this.max) {
      this.active.add(peer)
      return true
    }
    if (!this.waiting.includes(peer)) this.waiting.push(peer)
    return false
  }

  /** Whether peers wait for a turn. */
  get contended(): boolean {
    return this.waiting.length > 0
  }

  /** A block went to `peer` (or it has nothing left to ask); returns who sends next. */
  turnDone(peer: P, more: boolean): P[] {
    if (!this.active.has(peer)) return []
    if (this.waiting.length === 0) {
      if (more) return [peer]
      this.active.delete(peer)
      return []
    }
    this.active.delete(peer)
    if (more) this.waiting.push(peer)
    return [this.next()]
  }

  /** `peer` is gone: its turn passes on. */
  leave(peer: P): P[] {
    const at = this.waiting.indexOf(peer)
    if (at >= 0) this.waiting.splice(at, 1)
    if (!this.active.delete(peer) || this.waiting.length === 0) return []
    return [this.next()]
  }

  private next(): P {
    const first = this.turns++ % 2 === 0 ? this.waiting.findIndex(this.firstCopy) : 0
    const [peer] = this.waiting.splice(first >= 0 ? first : 0, 1)
    this.active.add(peer!)
    return peer!
  }
}
