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
