declare module 'webtorrent' {
  import { EventEmitter } from 'node:events'
  export interface Wire extends EventEmitter {
    remoteAddress: string
    remotePort: number
    downloaded: number
    uploaded: number
    destroy(): void
  }
  export interface Torrent extends EventEmitter {
    infoHash: string
    length: number
    downloaded: number
    uploaded: number
    received: number
    downloadSpeed: number
    uploadSpeed: number
    numPeers: number
    progress: number
    done: boolean
    ready: boolean
    pieceLength: number
    wires: Wire[]
    bitfield: { get(i: number): boolean }
    pieces: unknown[]
    addPeer(peer: string): boolean
    select(start: number, end: number, priority?: number): void
    destroy(opts?: { destroyStore?: boolean }, cb?: (err?: Error) => void): void
  }
  export default class WebTorrent extends EventEmitter {
    constructor(opts?: Record<string, unknown>)
    add(torrent: Uint8Array | string | object, opts?: Record<string, unknown>, cb?: (t: Torrent) => void): Torrent
    address(): { address: string; family: string; port: number } | null
    destroy(cb?: (err?: Error) => void): void
    torrentPort: number
    listening: boolean
  }
}
