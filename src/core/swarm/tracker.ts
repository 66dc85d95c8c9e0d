// The private tracker: an HTTP announce endpoint that answers only this run's info hash and secret.
import http from 'node:http'
import crypto from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { Server as TrackerServer } from 'bittorrent-tracker'

/** A running tracker; `urlFor(addr)` is the announce URL as a host reaches the runner at `addr`. */
export interface PrivateTracker {
  port: number
  secret: string
  /** The announce URL at `address` (and `port`, where a forward puts the tracker on another one). */
  urlFor(address: string, port?: number): string
  /** Announces seen, refused requests, for the log. */
  stats(): { announces: number; refused: number }
  close(): Promise<void>
}

/** Announce interval while hosts are still joining, and how long after the last join it stays that short. */
export const JOINING_INTERVAL_MS = 2000
export const JOINING_WINDOW_MS = 6000

/**
 * Tracker announce interval. Every host announces once as it starts and dials every peer it hears of,
 * so a host that starts late meets the early ones without their announcing again; later announces only
 * heal broken connections. Each costs every agent a request and a pass over the peer list: every 2 s
 * they took 15 of 76 CPU s per GiB at N = 32 (sweep 65.6 s → 54.8 s with 10 s).
 */
export function announceIntervalFor(hosts: number): number {
  return Math.max(10, Math.ceil(hosts / 50))
}

/**
 * Tries each port of [low, high] in turn; fails with the last error when none is free. Hosts are told to
 * announce every 2 s while others are still joining (two hosts that start together learn of each other
 * within seconds), and every `intervalSeconds` once no host has joined for a few seconds.
 */
export async function startTracker(opts: { infoHash: string | (() => string | undefined); ports: [number, number]; intervalSeconds: number; host?: string; joiningWindowMs?: number }): Promise<PrivateTracker> {
  // The runner starts its tracker before the file is hashed (a busy port is an input error): until then
  // the info hash is unknown and every announce is refused, though no agent announces before it is known.
  const expected = typeof opts.infoHash === 'function' ? opts.infoHash : () => opts.infoHash as string
  const joiningWindowMs = opts.joiningWindowMs ?? JOINING_WINDOW_MS
  const secret = crypto.randomBytes(16).toString('hex')
  const tracker = new TrackerServer({
    http: false,
    udp: false,
    ws: false,
    stats: false,
    interval: opts.intervalSeconds * 1000,
    // The peer's address is set below (its own `ip` behind a tunnel, else the socket's), never a client's header.
    trustProxy: true,
    filter: (infoHash: string, _params: unknown, cb: (err: Error | null) => void) => {
      cb(infoHash === expected() ? null : new Error('unknown torrent'))
    },
  })
  tracker.on('warning', () => {})
  tracker.on('error', () => {})
  let announces = 0
  let refused = 0
  let lastJoin = 0
  const tracked = tracker as unknown as { intervalMs: number }
  const prefix = `/${secret}/announce`
  const server = http.createServer((req, res) => {
    const [pathname, query = ''] = (req.url ?? '').split('?', 2)
    if (req.method !== 'GET' || pathname !== prefix) {
      refused++
      res.statusCode = 403
      res.end('d14:failure reason9:forbiddene')
      return
    }
    announces++
    const now = Date.now()
    if (/(^|&)event=started(&|$)/.test(query)) lastJoin = now
    // Read by the tracker as it writes this answer's interval.
    tracked.intervalMs = now - lastJoin < joiningWindowMs ? Math.min(JOINING_INTERVAL_MS, opts.intervalSeconds * 1000) : opts.intervalSeconds * 1000
    // A host that reaches us through its SSH connection shows up from our loopback: it names the
    // address its peers dial. Only holders of the run's announce URL get here, and every peer
    // connection is sealed, so a wrong address costs a failed dial, nothing more.
    const named = /(?:^|&)ip=([^&]*)/.exec(query)?.[1]
    const ip = named ? decodeURIComponent(named) : (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '')
    req.headers['x-forwarded-for'] = ip
    req.url = `/announce?${query}`
    tracker.onHttpRequest(req, res, { action: 'announce' })
  })
  server.keepAliveTimeout = 1000

  let lastError: Error | undefined
  for (let port = opts.ports[0]; port <= opts.ports[1]; port++) {
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => { server.off('listening', onListening); reject(err) }
        const onListening = () => { server.off('error', onError); resolve() }
        server.once('error', onError)
        server.once('listening', onListening)
        server.listen(port, opts.host)
      })
      lastError = undefined
      break
    } catch (err) {
      lastError = err as Error
    }
  }
  if (lastError) throw lastError
  const port = (server.address() as AddressInfo).port
  return {
    port,
    secret,
    urlFor: (address, at = port) => `http://${address.includes(':') ? `[${address}]` : address}:${at}${prefix}`,
    stats: () => ({ announces, refused }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.()
        server.close(() => resolve())
        tracker.close?.()
      }),
  }
}
