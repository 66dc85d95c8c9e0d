// One simulated push: N hosts and the runner on modelled links, the tracker, joins, slow and failing hosts; returns the figures the benchmark prints.
import { Clock, Link } from './network.js'
import { Side, type World } from './side.js'
import { TrackerModel } from './tracker.js'

export interface Scenario {
  hosts: number
  sizeBytes: number
  pieceLength: number
  /** Nominal rate of every host's link, each direction, as tc is given it. */
  rateMbit: number
  /** The runner's own link. */
  runnerMbit: number
  /** Share of the nominal rate that carries the file (TCP/IP headers, the seal's records take the rest). */
  efficiency: number
  /** This share of the hosts has `slowFactor` times the rate. */
  slowFraction: number
  slowFactor: number
  /** One-way latency of each host's (and the runner's) link to the switch, ms. */
  latencyMs: number
  /** Hosts start (agent in the swarm) uniformly within this many seconds... */
  joinSpread: number
  /** ...or at these times (s), one per host: a measured run's. */
  joinAt?: number[]
  /** This share of the hosts starts `lateBy` seconds later. */
  lateFraction: number
  lateBy: number
  /** This share of the hosts dies at a time uniform in [0, failWithin] s. */
  failFraction: number
  failWithin: number
  /** Peers a host hears of per announce, and how many hosts the tracker remembers. */
  peerList: number
  /** Wires a host dials up to (the runner's apart), and accepts up to twice that (the swarm's maxPeers). */
  maxPeers: number
  /** Hosts the runner sends to at once, a piece per turn; 0: every host that asks, at once. */
  serving: number
  trackerCache: number
  /** The one machine all hosts share, when its CPU is modelled: GiB of pieces it can deliver per second. */
  machineGiBps?: number
  seed: number
  /** false: every host owns every piece (one stripe), i.e. asks the runner for all of it: the stripe policy off. */
  stripes?: boolean
}

export interface SimResult {
  hosts: number
  sizeBytes: number
  pieceLength: number
  pieces: number
  rateMbit: number
  /** size × 8 / nominal link rate, as bench/model.ts defines it. */
  bound: number
  /** From the first host's start to the last host's last piece (hosts that completed). */
  seconds: number
  p50: number
  p99: number
  /** p50 of the hosts that are not slow. */
  othersP50: number
  slowP50?: number
  runnerCopies: number
  /** When the runner's last byte was through: its link's share of the time. */
  runnerBusy: number
  completed: number
  failed: number
  /** Hosts that neither completed nor failed within the time limit. */
  stuck: number
  /** Connections per host at the end (mean). */
  peers: number
  events: number
  wallSeconds: number
}

/** Deterministic random numbers (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `count` distinct host indexes out of n, at random. */
function pick(n: number, share: number, random: () => number): Set<number> {
  const order = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  return new Set(order.slice(0, Math.round(share * n)))
}

const percentile = (sorted: number[], p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! : NaN)

/** `progress` hears, every 30 s of wall time, the simulated time and the hosts done. */
export function simulate(s: Scenario, progress?: (seconds: number, done: number) => void): SimResult {
  const began = performance.now()
  const random = seeded(s.seed)
  const clock = new Clock()
  const n = s.hosts
  const pieces = Math.max(1, Math.ceil(s.sizeBytes / s.pieceLength))
  const bytesPerSecond = (mbit: number) => (mbit * 1e6 * s.efficiency) / 8
  const latency = s.latencyMs / 1000
  const world: World = {
    clock,
    pieces,
    pieceLength: (i) => Math.min(s.pieceLength, s.sizeBytes - i * s.pieceLength),
    latency: (a, b) => a.latency + b.latency,
    haveDelay: (from) => from.latency + latency,
    holds: new Uint8Array((n + 1) * pieces).fill(1, n * pieces),
    machine: s.machineGiBps ? new Link(clock, s.machineGiBps * 2 ** 30, 2) : undefined,
    random,
    serving: s.serving,
    runnerId: n,
    done: (side) => {
      remaining--
      announce(side, false)
    },
  }
  const runnerRate = bytesPerSecond(s.runnerMbit)
  const runner = new Side(world, n, true, new Link(clock, runnerRate, 0), new Link(clock, runnerRate, 1), latency)
  const slow = pick(n, s.slowFraction, random)
  const late = pick(n, s.lateFraction, random)
  const failing = pick(n, s.failFraction, random)
  const hosts = Array.from({ length: n }, (_, k) => {
    const rate = bytesPerSecond(s.rateMbit * (slow.has(k) ? s.slowFactor : 1))
    return new Side(world, k, false, new Link(clock, rate, 0), new Link(clock, rate, 1), latency, slow.has(k))
  })
  const tracker = new TrackerModel(n, s.peerList, s.trackerCache, random)
  let remaining = n
  /** Pairs being dialled, so that two dials of one pair make one wire (the swarm keeps one per pair). */
  const dialling = new Set<number>()
  /** Wires of each side, in their handshake or through it (the swarm's `wires`). */
  const wires = new Uint32Array(n + 1)
  const dial = (a: Side, b: Side) => {
    const key = Math.min(a.id, b.id) * (n + 1) + Math.max(a.id, b.id)
    if (a === b || a.connectedTo(b) || dialling.has(key)) return
    // A host dials the runner always, a peer while it has fewer than maxPeers wires; the peer turns it away past twice that.
    if (!b.isRunner && (wires[a.id]! >= s.maxPeers || wires[b.id]! >= 2 * s.maxPeers)) return
    dialling.add(key)
    wires[a.id]!++
    wires[b.id]!++
    // TCP's handshake, then the seal's proofs both ways: two round trips.
    clock.after(4 * world.latency(a, b), () => {
      dialling.delete(key)
      if (b.joined && a.alive && b.alive && !a.connectedTo(b)) return Side.link(a, b)
      wires[a.id]!--
      wires[b.id]!--
    })
  }
  /** Each host's announce loop; a newer announce (its 'completed') replaces the pending one. */
  const announceGen = new Int32Array(n)
  const announce = (h: Side, started: boolean) => {
    if (!h.alive) return
    const gen = ++announceGen[h.id]!
    const { peers, interval } = tracker.announce(h.id, started, clock.now)
    for (const p of peers) dial(h, hosts[p]!)
    clock.after(interval, () => {
      if (announceGen[h.id] === gen) announce(h, false)
    })
  }
  const joinAt = hosts.map((_, k) => (s.joinAt?.[k] ?? random() * s.joinSpread) + (late.has(k) ? s.lateBy : 0))
  const t0 = Math.min(...joinAt)
  hosts.forEach((h, k) => {
    clock.at(joinAt[k]!, () => {
      if (!h.alive) return
      if (s.stripes === false) h.join(0, 1)
      else h.join(k, n)
      dial(h, runner)
      announce(h, true)
    })
    if (failing.has(k)) {
      clock.at(random() * s.failWithin, () => {
        if (h.doneAt === undefined && h.alive) remaining--
        if (h.alive) for (const v of h.views) wires[v.node.id]!--
        wires[h.id] = 0
        h.fail()
      })
    }
  })
  const bound = (s.sizeBytes * 8) / (s.rateMbit * 1e6)
  const limit = Math.max(...joinAt) + 100 * bound + 600
  let lastReport = performance.now()
  clock.run(limit, () => {
    if (progress && (clock.events & 0xffff) === 0 && performance.now() - lastReport > 30_000) {
      lastReport = performance.now()
      progress(clock.now - t0, hosts.filter((h) => h.doneAt !== undefined).length)
    }
    return remaining <= 0
  })

  const done = hosts.filter((h) => h.doneAt !== undefined)
  const times = done.map((h) => h.doneAt! - t0).sort((a, b) => a - b)
  const others = done.filter((h) => !h.slow).map((h) => h.doneAt! - t0).sort((a, b) => a - b)
  const slowTimes = done.filter((h) => h.slow).map((h) => h.doneAt! - t0).sort((a, b) => a - b)
  const failed = hosts.filter((h) => !h.alive && h.doneAt === undefined).length
  return {
    hosts: n,
    sizeBytes: s.sizeBytes,
    pieceLength: s.pieceLength,
    pieces,
    rateMbit: s.rateMbit,
    bound,
    seconds: times.length ? times[times.length - 1]! : NaN,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    othersP50: percentile(others, 0.5),
    slowP50: slowTimes.length ? percentile(slowTimes, 0.5) : undefined,
    runnerCopies: runner.uploaded / s.sizeBytes,
    runnerBusy: runner.lastSentAt - t0,
    completed: done.length,
    failed,
    stuck: n - done.length - failed,
    peers: hosts.reduce((sum, h) => sum + h.peers, 0) / n,
    events: clock.events,
    wallSeconds: (performance.now() - began) / 1000,
  }
}
