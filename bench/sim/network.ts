// The simulated network: a clock of events, links that share their rate fairly among the connections on them, and connections that carry pieces in order.
import { Heap } from './heap.js'

/** Discrete events in time order; time in seconds. */
export class Clock {
  now = 0
  events = 0
  private readonly queue = new Heap<() => void>()

  at(time: number, fn: () => void): void {
    this.queue.push(fn, time < this.now ? this.now : time)
  }

  after(delay: number, fn: () => void): void {
    this.at(this.now + delay, fn)
  }

  /** Runs events until none is left, `stop()` holds, or the next is later than `until`. */
  run(until: number, stop: () => boolean): void {
    while (this.queue.size && !stop()) {
      const t = this.queue.minKey
      if (t > until) break
      const fn = this.queue.pop()!
      this.now = t
      this.events++
      fn()
    }
  }
}

/**
 * One direction of one host's link (or the machine all hosts share): processor sharing, each connection
 * active on it gets rate / n. A virtual clock `v` counts the bytes each active connection has been given
 * so far, so a change in n costs one reschedule, not one per connection.
 */
export class Link {
  /** Connections active on this link. */
  private n = 0
  private v = 0
  private t = 0
  private version = 0
  private firing = false
  /** Connections by the virtual time at which their current piece is through this link. */
  private readonly queue = new Heap<Conn>()

  constructor(private readonly clock: Clock, readonly rate: number, readonly stage: number) {}

  private advance(): void {
    const now = this.clock.now
    if (this.n > 0) this.v += ((now - this.t) * this.rate) / this.n
    this.t = now
  }

  /** `conn` sends `bytes` through this link next; `already` when it was active here (one piece after another). */
  start(conn: Conn, bytes: number, already: boolean): void {
    this.advance()
    if (!already) this.n++
    this.queue.push(conn, this.v + bytes)
    this.schedule()
  }

  /** `conn` has nothing more for this link for now. */
  stop(): void {
    this.advance()
    this.n--
    this.schedule()
  }

  private schedule(): void {
    if (this.firing) return
    const version = ++this.version
    if (this.queue.size === 0 || this.n === 0) return
    const when = this.t + ((this.queue.minKey - this.v) * this.n) / this.rate
    this.clock.at(when, () => this.fire(version))
  }

  private fire(version: number): void {
    if (version !== this.version) return
    this.advance()
    this.firing = true
    const eps = 1e-6 + this.v * 1e-12
    while (this.queue.size && this.queue.minKey <= this.v + eps) this.queue.pop()!.through(this.stage)
    this.firing = false
    this.schedule()
  }
}

/**
 * One direction of a connection between two sides: the pieces the receiver asked for, sent in order
 * through each of its links (the sender's upload, the receiver's download, and the shared machine when
 * modelled). Each link serves a piece at its own fair share; a link other than the sender's may not run
 * ahead of it by more than the piece the sender is on, and a piece has arrived once every link is
 * through with it.
 */
export class Conn {
  closed = false
  private readonly pieces: number[] = []
  private readonly lengths: number[] = []
  /** Pieces dropped from the front of the arrays. */
  private base = 0
  /** Per link: how many pieces it is through with; whether it is active (serving pieces[pos]). */
  private readonly pos: number[]
  private readonly busy: boolean[]
  private delivered = 0

  constructor(private readonly links: Link[], private readonly onPiece: (i: number, length: number) => void) {
    this.pos = links.map(() => 0)
    this.busy = links.map(() => false)
  }

  push(i: number, length: number): void {
    if (this.closed) return
    this.pieces.push(i)
    this.lengths.push(length)
    this.kick()
  }

  /** Whether link s may take piece pos[s]: asked for, and (past the sender's link) already on its way. */
  private ready(s: number): boolean {
    const k = this.pos[s]!
    if (k >= this.base + this.pieces.length) return false
    return s === 0 || k < this.pos[0]! || (k === this.pos[0]! && this.busy[0]!)
  }

  private kick(): void {
    for (let s = 0; s < this.links.length; s++) {
      if (this.busy[s] || !this.ready(s)) continue
      this.busy[s] = true
      // After the sender's link starts a piece the loop goes on to the others, which may follow it.
      this.links[s]!.start(this, this.lengths[this.pos[s]! - this.base]!, false)
    }
  }

  /** Link s is through with its current piece. */
  through(s: number): void {
    if (this.closed) return
    this.pos[s]!++
    const link = this.links[s]!
    if (this.ready(s)) link.start(this, this.lengths[this.pos[s]! - this.base]!, true)
    else {
      this.busy[s] = false
      link.stop()
    }
    if (s === 0) this.kick()
    let through = Infinity
    for (const p of this.pos) through = Math.min(through, p)
    while (this.delivered < through) {
      const k = this.delivered++ - this.base
      this.onPiece(this.pieces[k]!, this.lengths[k]!)
    }
    // Drop what every link is through with once it is most of the arrays.
    const done = this.delivered - this.base
    if (done > 256 && done * 2 > this.pieces.length) {
      this.pieces.splice(0, done)
      this.lengths.splice(0, done)
      this.base = this.delivered
    }
  }

  /** The connection is gone: its links stop serving it; what was asked for is lost. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.links.forEach((link, s) => {
      if (this.busy[s]) link.stop()
      this.busy[s] = false
    })
  }
}
