// The runner's seeder: serves the local file in place, read-only, to the hosts that connect to it.
import WebTorrent, { type Torrent } from 'webtorrent'
import { ReadOnlyFileStore } from './file-store.js'
import { privateClientOptions } from './client-options.js'
import type { FileTorrent } from './torrent.js'
import { torrentFileFor } from './torrent.js'

/** A running seeder; hosts add `address:port` as a peer. */
export interface Seeder {
  port: number
  /** Bytes the runner has uploaded so far. */
  uploaded(): number
  close(): Promise<void>
}

export async function startSeeder(file: string, t: FileTorrent, opts: { uploadSlots: number }): Promise<Seeder> {
  const client = new WebTorrent(privateClientOptions({ torrentPort: 0, seedOutgoingConnections: false }))
  client.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    if (client.listening) return resolve()
    client.once('listening', () => resolve())
    client.once('error', reject)
  })
  const store = new ReadOnlyFileStore(t.pieceLength, { path: file, length: t.size })
  const torrent: Torrent = await new Promise((resolve, reject) => {
    const tor = client.add(torrentFileFor(t), {
      preloadedStore: store,
      skipVerify: true,
      uploads: opts.uploadSlots,
      // The seeder never announces: every host is told its address directly.
    })
    tor.once('ready', () => resolve(tor))
    tor.once('error', reject)
  })
  const address = client.address()
  if (!address) throw new Error('seeder is not listening')
  return {
    port: address.port,
    uploaded: () => torrent.uploaded,
    close: () => new Promise<void>((resolve) => client.destroy(() => resolve())),
  }
}
