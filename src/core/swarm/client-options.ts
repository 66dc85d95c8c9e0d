// webtorrent settings for a private swarm between servers, shared by the runner's seeder and the agents.

/**
 * No DHT, LSD, PEX, UPnP/NAT-PMP, uTP, WebRTC or web seeds: peers come from our tracker alone. No
 * protocol encryption either: its Diffie-Hellman handshake cost ~0.5 s CPU per agent and hides nothing
 * here (every piece is verified by hash, and SSH already carries what is secret).
 */
export function privateClientOptions(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dht: false,
    lsd: false,
    utPex: false,
    natUpnp: false,
    natPmp: false,
    utp: false,
    webSeeds: false,
    secure: 0,
    tracker: { wrtc: false },
    ...extra,
  }
}

/**
 * How many of its requests a peer may have outstanding with us (BEP 10 `reqq`, which webtorrent honours):
 * 64 blocks of 16 KiB, 1 MiB in flight per wire. It bounds the blocks waiting in send queues and in
 * unfinished pieces; unbounded, a peer asks for about a second of the wire's rate (at 1 Gbit/s the runner
 * held 263 MiB).
 */
export const REQUESTS_IN_FLIGHT = 64

/** Advertises REQUESTS_IN_FLIGHT on every wire of a torrent, before its extended handshake goes out. */
export function boundRequestsInFlight(torrent: { on(event: 'wire', fn: (wire: { extendedHandshake: Record<string, unknown> }) => void): unknown }): void {
  torrent.on('wire', (wire) => {
    wire.extendedHandshake.reqq = REQUESTS_IN_FLIGHT
  })
}
