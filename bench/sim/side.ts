// One simulated side, a host's agent or the runner's seeder: the agent asks its peers for pieces through the real Picker and Asker, as src/engine/swarm.ts does.
import { Asker, nextRate, TICK_MS, type PeerAsks } from '../../src/engine/ask.js'
import { Bitfield } from '../../src/engine/bitfield.js'
import { Picker } from '../../src/engine/picker.js'
import { ServeSlots } from '../../src/engine/serve-slots.js'
import { Conn, type Clock, type Link } from './network.js'

/** What a side needs of the simulation around it. */
export interface World {
  clock: Clock
  pieces: number
  pieceLength(i: number): number
  /** One-way latency between two sides, seconds. */
  latency(a: Side, b: Side): number
  /** How long a `have` takes to reach the peers (one event for all of them). */
  haveDelay(from: Side): number
  /**
   * Which side holds which piece, side id × pieces + piece (the runner's row all set): a have for a
   * piece its peer already holds changes nothing there, and this skips it without touching that peer.
   */
  holds: Uint8Array
  /** The machine every byte passes through, when its CPU is modelled. */
  machine?: Link
  /** Hosts the runner sends to at once, a piece per turn (the seeder's ServeSlots); 0: to every host that asks at once. */
  serving: number
  random(): number
  /** A host verified its last piece. */
  done(side: Side): void
  /** The runner's side id. */
  runnerId: number
}

/** One side's view of a connected peer: what the swarm's Peer holds for the request loop. */
export class View implements PeerAsks {
  readonly isRunner: boolean
  offers = { queue: [] as number[], head: 0 }
  outstanding = 0
  /** Its delivery rate (bytes/s) and when a piece last came or, idle, was asked: the swarm's Peer has both. */
  rate = 0
  lastAt = 0
  /** Pieces asked of this peer: index, then the time it was asked for, for each. */
  readonly inflight: number[] = []
  /** The peer's view of us. */
  back!: View
  /** Carries what we asked for, from the peer to us. */
  conn: Conn | undefined
  closed = false
  /** Place in the owner's `views`. */
  at = 0
  /** A view of the runner: pieces asked of it that wait for their turn there (not begun), and the piece whose sending ends the turn (-1: none). */
  readonly atRunner: number[] = []
  turnPiece = -1
  /** The peer's row in World.holds. */
  readonly row: number

  constructor(readonly node: Side, public has: Bitfield, pieces: number) {
    this.isRunner = node.isRunner
    this.row = node.id * pieces
  }
}

export class Side {
  alive = true
  doneAt: number | undefined
  readonly views: View[] = []
  private readonly viewOf = new Map<number, View>()
  /** What this side has told its peers (every view of it shares this bitfield), and those pieces in order. */
  readonly announced: Bitfield
  readonly got: number[] = []
  /** Bytes sent, and bytes received from the runner. */
  uploaded = 0
  fromRunner = 0
  /** When the last piece this side sent was through. */
  lastSentAt = 0
  private asker: Asker | undefined
  private have: Bitfield | undefined
  /** For each piece, how many connected peers other than the runner have it (the swarm's offeredByPeer). */
  private offered: Uint16Array | undefined
  private readonly offeredByPeer = (i: number): boolean => this.offered![i]! > 0
  /** The runner's turns: each is a host's view of the runner; and which pieces it has begun to send. */
  private readonly slots: ServeSlots<View> | undefined
  private readonly begun: Uint8Array | undefined

  constructor(
    readonly world: World,
    readonly id: number,
    readonly isRunner: boolean,
    readonly up: Link,
    readonly down: Link,
    /** One-way latency to the switch, seconds. */
    readonly latency: number,
    /** Marked slow by the scenario (for the figures only). */
    readonly slow = false,
  ) {
    this.announced = isRunner ? Bitfield.full(world.pieces) : new Bitfield(world.pieces)
    if (isRunner && world.serving > 0) {
      const begun = (this.begun = new Uint8Array(world.pieces))
      this.slots = new ServeSlots<View>(world.serving, (v) => v.atRunner.length > 0 && begun[v.atRunner[0]!] === 0)
    }
  }

  get joined(): boolean {
    return this.asker !== undefined || this.isRunner
  }

  get peers(): number {
    return this.views.length
  }

  private get nowMs(): number {
    return this.world.clock.now * 1000
  }

  /** The agent starts: host `index` of `of` under the stripe policy. */
  join(index: number, of: number): void {
    this.have = new Bitfield(this.world.pieces)
    this.asker = new Asker(new Picker(this.have, { index, of }), (i) => this.world.pieceLength(i), this.nowMs, (v) => !v.isRunner)
    this.offered = new Uint16Array(this.world.pieces)
    this.world.clock.after((this.world.random() * TICK_MS) / 1000, () => this.tick())
  }

  connectedTo(other: Side): boolean {
    return this.viewOf.has(other.id)
  }

  /** A wire between two sides is through its handshake. */
  static link(a: Side, b: Side): void {
    if (!a.alive || !b.alive || a.connectedTo(b)) return
    const va = new View(b, b.announced, b.world.pieces)
    const vb = new View(a, a.announced, a.world.pieces)
    va.back = vb
    vb.back = va
    a.add(va)
    b.add(vb)
  }

  private add(v: View): void {
    v.at = this.views.length
    this.views.push(v)
    this.viewOf.set(v.node.id, v)
    if (!this.asker) return
    // offered counts only pieces we lack: it is read for those alone, and we never lose a piece.
    if (!v.isRunner) for (const i of v.node.got) if (!this.have!.get(i)) this.offered![i]!++
    this.fill(v)
    // The peer's bitfield, where it has something.
    if (!v.isRunner && v.node.got.length > 0) {
      const rv = this.viewOf.get(this.world.runnerId)
      if (rv) for (const i of [...rv.atRunner]) if (v.has.get(i)) this.takeFromRunner(i)
      this.asker.bitfield(v)
      this.fill(v)
    }
  }

  /** The wire to a peer closed: what was asked of it is asked of others. */
  drop(v: View): void {
    if (v.closed) return
    v.closed = true
    v.conn?.close()
    const last = this.views.pop()!
    if (last !== v) {
      this.views[v.at] = last
      last.at = v.at
    }
    this.viewOf.delete(v.node.id)
    if (v.isRunner) v.node.leftTurns(v)
    const asker = this.asker
    if (!asker || !this.alive) return
    if (!v.isRunner) for (const i of v.node.got) if (!this.have!.get(i)) this.offered![i]!--
    for (let k = 0; k < v.inflight.length; k += 2) {
      const i = v.inflight[k]!
      asker.release(i)
      for (const w of this.views) if (asker.reoffer(w, i)) this.fill(w)
      for (const w of this.views) if (w.isRunner) this.fill(w)
    }
  }

  /** The agent dies: its wires close (the peers notice one latency later). */
  fail(): void {
    if (!this.alive) return
    this.alive = false
    for (const v of [...this.views]) {
      v.back.conn?.close()
      this.drop(v)
      const peer = v.node
      this.world.clock.after(this.world.latency(this, peer), () => peer.drop(v.back))
    }
  }

  /** Asks `v`'s peer for pieces until it has enough outstanding (the swarm's fill). */
  private fill(v: View): void {
    const asker = this.asker
    if (!asker || !this.alive || this.doneAt !== undefined || v.closed) return
    // The runner's wire goes by bytes, the peers' by time, as in the swarm (no SSH route modelled).
    const limit = asker.limit(v)
    while (v.outstanding < limit) {
      const idle = v.outstanding === 0
      const i = asker.next(v, this.offeredByPeer)
      if (i === undefined) return
      if (idle) v.lastAt = this.nowMs
      v.inflight.push(i, this.nowMs)
      const from = v.node
      const length = this.world.pieceLength(i)
      this.world.clock.after(this.world.latency(this, from), () => {
        if (v.closed || !from.alive) return
        if (from.slots) from.asked(this, v, i)
        else this.connFrom(v).push(i, length)
      })
    }
  }

  /** The runner: `host` asked for piece i through its view `v` of the runner; it waits its turn. */
  private asked(host: Side, v: View, i: number): void {
    v.atRunner.push(i)
    this.serveTurn(host, v)
  }

  /**
   * The runner's seeder serves `host` if it has its turn, a piece per turn, the turn passing on once the
   * piece is through. In swarm.ts a host holds its turn while its socket holds a block's worth (no
   * one waiting), or until its block has left the process (others waiting): one piece at a time each.
   */
  private serveTurn(host: Side, v: View): void {
    const slots = this.slots!
    if (v.turnPiece >= 0 || v.closed) return
    if (v.atRunner.length === 0) {
      for (const w of slots.turnDone(v, false)) this.serveTurn(w.back.node, w)
      return
    }
    if (!slots.admit(v)) return
    const i = v.atRunner.shift()!
    this.begun![i] = 1
    v.turnPiece = i
    host.connFrom(v).push(i, this.world.pieceLength(i))
  }

  /** The runner: piece i of `v`'s connection is through. */
  private sentThrough(v: View, i: number): void {
    if (v.turnPiece !== i) return
    v.turnPiece = -1
    for (const w of this.slots!.turnDone(v, v.atRunner.length > 0)) this.serveTurn(w.back.node, w)
  }

  /** The runner: the host behind `v` closed its wire; its turn passes on. */
  leftTurns(v: View): void {
    if (!this.slots) return
    v.atRunner.length = 0
    for (const w of this.slots.leave(v)) this.serveTurn(w.back.node, w)
  }

  /**
   * A peer now has piece i, asked of the runner and not begun there: the request is taken back and the
   * piece asked of a peer (swarm.ts's takeFromRunner).
   */
  private takeFromRunner(i: number): boolean {
    const rv = this.viewOf.get(this.world.runnerId)
    if (!rv) return false
    const at = rv.atRunner.indexOf(i)
    if (at < 0) return false
    rv.atRunner.splice(at, 1)
    for (let k = 0; k < rv.inflight.length; k += 2) {
      if (rv.inflight[k] !== i) continue
      rv.inflight.splice(k, 2)
      break
    }
    rv.outstanding -= this.world.pieceLength(i)
    const asker = this.asker!
    asker.release(i)
    for (const w of this.views) if (asker.reoffer(w, i)) this.fill(w)
    this.fill(rv)
    return true
  }

  private connFrom(v: View): Conn {
    if (v.conn) return v.conn
    const from = v.node
    const links = [from.up, this.down]
    if (this.world.machine) links.push(this.world.machine)
    v.conn = new Conn(links, (i, length) => {
      from.uploaded += length
      from.lastSentAt = this.world.clock.now
      if (from.slots) from.sentThrough(v, i)
      this.world.clock.after(this.world.latency(from, this), () => this.receive(v, i, length))
    })
    return v.conn
  }

  /** A whole piece arrived and (the hash being right in a simulation) is verified. */
  private receive(v: View, i: number, length: number): void {
    if (v.closed || !this.alive || !this.asker) return
    let askedAt = this.nowMs
    for (let k = 0; k < v.inflight.length; k += 2) {
      if (v.inflight[k] !== i) continue
      askedAt = v.inflight[k + 1]!
      v.inflight.splice(k, 2)
      break
    }
    v.outstanding -= length
    v.rate = nextRate(v.rate, length, this.nowMs - v.lastAt)
    v.lastAt = this.nowMs
    if (v.isRunner) this.fromRunner += length
    this.asker.verified(i, v.isRunner, askedAt, this.nowMs)
    this.world.holds[this.id * this.world.pieces + i] = 1
    this.world.clock.after(this.world.haveDelay(this), () => this.tellHave(i))
    if (this.have!.complete) {
      this.doneAt = this.world.clock.now
      this.world.done(this)
    } else this.fill(v)
  }

  /** Our `have` reaches every peer but the runner. */
  private tellHave(i: number): void {
    if (!this.alive || !this.announced.set(i)) return
    this.got.push(i)
    const holds = this.world.holds
    for (const v of this.views) if (holds[v.row + i] === 0) v.node.onHave(v.back, i)
  }

  private onHave(v: View, i: number): void {
    if (!this.asker || !this.alive) return
    this.offered![i]!++
    if (this.takeFromRunner(i)) return
    if (this.asker.have(v, i)) this.fill(v)
  }

  /** The swarm's clock: starving, and idle wires asked again. */
  private tick(): void {
    if (!this.alive || this.doneAt !== undefined) return
    this.asker!.tick(this.nowMs)
    for (const v of this.views) if (this.asker!.idleAsk(v)) this.fill(v)
    this.world.clock.after(TICK_MS / 1000, () => this.tick())
  }
}
