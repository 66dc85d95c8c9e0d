// The run's private tracker as simulated hosts meet it: bittorrent-tracker's random peer lists from the hosts it remembers, herd's announce intervals.
import { NUMWANT } from '../../src/engine/announce.js'
import { announceIntervalFor, JOINING_INTERVAL_MS, JOINING_WINDOW_MS } from '../../src/core/swarm/tracker.js'

/** bittorrent-tracker 11.2 answers at most this many peers, whatever numwant asks (lib/common.js, MAX_ANNOUNCE_PEERS). */
export const TRACKER_MAX_PEERS = 82
/** and remembers this many peers per torrent, dropping the one that announced least recently (lib/server/swarm.js, peersCacheLength). */
export const TRACKER_CACHE = 1000
/** Wires an agent dials up to (src/agent/index.ts gives the swarm NUMWANT as maxPeers). */
export const MAX_PEERS = NUMWANT
/** Peers a host hears of per announce today. */
export const PEER_LIST = Math.min(NUMWANT, TRACKER_MAX_PEERS)

export class TrackerModel {
  /** Remembered hosts, least recently announced first (a Map keeps insertion order), each with its place in `ids`. */
  private readonly order = new Map<number, number>()
  private readonly ids: number[] = []
  private lastJoin = -Infinity
  private readonly interval: number

  constructor(
    hosts: number,
    private readonly peerList: number,
    private readonly cache: number,
    private readonly random: () => number,
  ) {
    this.interval = announceIntervalFor(hosts)
  }

  /** Host `id` announces at `now` (s): the peers it is told of (itself possibly among them) and when to announce again. */
  announce(id: number, started: boolean, now: number): { peers: number[]; interval: number } {
    if (started) this.lastJoin = now
    const at = this.order.get(id)
    if (at !== undefined) {
      this.order.delete(id)
      this.order.set(id, at)
    } else {
      this.order.set(id, this.ids.length)
      this.ids.push(id)
      if (this.ids.length > this.cache) this.forget(this.order.keys().next().value!)
    }
    const joining = now - this.lastJoin < JOINING_WINDOW_MS / 1000
    return { peers: this.sample(), interval: joining ? Math.min(JOINING_INTERVAL_MS / 1000, this.interval) : this.interval }
  }

  private forget(id: number): void {
    const at = this.order.get(id)!
    this.order.delete(id)
    const last = this.ids.pop()!
    if (last !== id) {
      this.ids[at] = last
      this.order.set(last, at)
    }
  }

  /** Up to peerList remembered hosts, at random. */
  private sample(): number[] {
    const ids = this.ids
    if (ids.length <= this.peerList) return [...ids]
    const picked = new Set<number>()
    while (picked.size < this.peerList) picked.add(ids[Math.floor(this.random() * ids.length)]!)
    return [...picked]
  }
}
