// Announces to the run's private tracker over HTTP and hands out the peers it names (compact lists).
import http from 'node:http'
import bencode from 'bencode'

export interface AnnounceOptions {
  /** The tracker's announce URL, as the runner gave it (its path carries the tracker's secret). */
  url: string
  infoHash: Buffer
  peerId: Buffer
  /** The port this side listens on for peers. */
  port: number
  /** The address the other peers should dial, where the tracker can't see it (behind a tunnel). */
  ip?: string
  /** Bytes still missing (0 once done: the tracker then counts this side as a seeder). */
  left(): number
  onPeers(peers: { host: string; port: number }[]): void
  onError(message: string): void
}

/** Percent-encodes raw bytes for a query string, as trackers expect for info_hash and peer_id. */
function escapeBytes(bytes: Buffer): string {
  let out = ''
  for (const b of bytes) out += `%${b.toString(16).padStart(2, '0')}`
  return out
}

/** An IPv6 address as sockets show it (`fd00::a`, not `fd00:0:0:0:0:0:0:a`), so one peer has one name. */
function canonicalV6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1)
}

/** Compact peer lists: 6 bytes (IPv4 + port) or 18 bytes (IPv6 + port) per peer. */
function compactPeers(bytes: Uint8Array | undefined, v6: boolean): { host: string; port: number }[] {
  if (!(bytes instanceof Uint8Array)) return []
  const size = v6 ? 18 : 6
  const out: { host: string; port: number }[] = []
  for (let at = 0; at + size <= bytes.length; at += size) {
    const ip = bytes.subarray(at, at + size - 2)
    const host = v6 ? canonicalV6(Array.from({ length: 8 }, (_, k) => ((ip[2 * k]! << 8) | ip[2 * k + 1]!).toString(16)).join(':')) : Array.from(ip).join('.')
    out.push({ host, port: (bytes[at + size - 2]! << 8) | bytes[at + size - 1]! })
  }
  return out
}

/**
 * Peers asked of the tracker per announce, and how many an agent dials (bittorrent-tracker answers at
 * most 82). Pieces spread through any connected graph: at N = 200 every host dialling every other was
 * 20,000 handshakes on 4 Mbit/s links, and hosts failed on handshake timeouts before a byte moved.
 */
export const NUMWANT = 40

export class Announcer {
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor(private readonly opts: AnnounceOptions) {}

  /** Announces now (`started`), then again at the interval the tracker asks for. */
  start(): void {
    void this.announce('started')
  }

  /** Tells the tracker this side has the whole file. */
  completed(): void {
    void this.announce('completed')
  }

  /** Stops announcing and tells the tracker, without waiting long for it. */
  async stop(): Promise<void> {
    if (this.stopped) return
    clearTimeout(this.timer)
    await Promise.race([this.announce('stopped'), new Promise((r) => setTimeout(r, 1000).unref())])
    this.stopped = true
  }

  private async announce(event?: 'started' | 'completed' | 'stopped'): Promise<void> {
    if (this.stopped) return
    const { url, infoHash, peerId, port } = this.opts
    const query = `info_hash=${escapeBytes(infoHash)}&peer_id=${escapeBytes(peerId)}&port=${port}&uploaded=0&downloaded=0&left=${this.opts.left()}&compact=1&numwant=${NUMWANT}${this.opts.ip ? `&ip=${encodeURIComponent(this.opts.ip)}` : ''}${event ? `&event=${event}` : ''}`
    let interval = 10
    try {
      const body = await get(`${url}${url.includes('?') ? '&' : '?'}${query}`)
      const answer = bencode.decode(body) as Record<string, unknown>
      if (answer['failure reason']) throw new Error(Buffer.from(answer['failure reason'] as Uint8Array).toString())
      if (typeof answer.interval === 'number' && answer.interval > 0) interval = answer.interval
      if (event !== 'stopped') this.opts.onPeers([...compactPeers(answer.peers as Uint8Array, false), ...compactPeers(answer.peers6 as Uint8Array, true)])
    } catch (err) {
      if (event !== 'stopped') this.opts.onError(`tracker announce failed: ${(err as Error).message}`)
      interval = 2
    }
    if (event === 'stopped' || this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.announce(), interval * 1000)
    this.timer.unref()
  }
}

function get(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`HTTP ${res.statusCode}`))))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}
