// webtorrent settings for a private swarm between servers, shared by the runner's seeder and the agents.

/** No DHT, LSD, PEX, UPnP/NAT-PMP, uTP, WebRTC or web seeds: peers come from our tracker alone. */
export function privateClientOptions(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dht: false,
    lsd: false,
    utPex: false,
    natUpnp: false,
    natPmp: false,
    utp: false,
    webSeeds: false,
    tracker: { wrtc: false },
    ...extra,
  }
}
