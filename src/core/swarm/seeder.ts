// The runner's seeder: serves the local file in place, read-only, to the hosts that connect to it.
import WebTorrent, { type Torrent } from 'webtorrent'
import { FileStore } from './file-store.js'
import { boundRequestsInFlight, privateClientOptions } from './client-options.js'
import type { FileTorrent } from './torrent.js'
import { torrentFileFor } from './torrent.js'

/** A running seeder; hosts add `address:port` as a peer. */
export interface Seeder {
  port: number
  /** Bytes the runner has uploaded so far. */
  uploaded(): number
  close(): Promise<void>
}

/** A webtorrent client listening on `port` (0: any). */
async function listeningClient(port: number): Promise<WebTorrent> {
  const client = new WebTorrent(privateClientOptions({ torrentPort: port, seedOutgoingConnections: false }))
  try {
    await new Promise<void>((resolve, reject) => {
      if (client.listening) return resolve()
      client.once('listening', () => resolve())
      client.once('error', reject)
    })
  } catch (err) {
    await new Promise<void>((resolve) => client.destroy(() => resolve()))
    throw err
  }
  client.on('error', () => {})
  return client
}

/** Seeds on the first free port of `ports` (a firewall can then name it), else on any free port. */
export async function startSeeder(file: string, t: FileTorrent, opts: { uploadSlots: number; ports: number[] }): Promise<Seeder> {
  let client: WebTorrent | undefined
  for (const port of opts.ports) {
    client = await listeningClient(port).catch(() => undefined)
    if (client) break
  }
  client ??= await listeningClient(0)
  const store = new FileStore(t.pieceLength, { path: file, length: t.size })
  const torrent: Torrent = await new Promise((resolve, reject) => {
    const tor = client.add(torrentFileFor(t), {
      preloadedStore: store,
      skipVerify: true,
      uploads: opts.uploadSlots,
      // The seeder never announces: every host is told its address directly.
    })
    boundRequestsInFlight(tor)
    tor.once('ready', () => resolve(tor))
    tor.once('error', reject)
  })
  const address = client.address()
  if (!address) throw new Error('seeder is not listening')
  return {
    port: address.port,
    uploaded: () => torrent.uploaded,
    close: () => new Promise<void>((resolve) => client!.destroy(() => resolve())),
  }
}
