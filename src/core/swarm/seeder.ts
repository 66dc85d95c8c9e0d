// The runner's seeder: serves the local file in place, read-only, to the run's hosts and to no one else.
import crypto from 'node:crypto'
import { Bitfield } from '../../engine/bitfield.js'
import type { RunSeal } from '../../engine/seal.js'
import { RateLimit } from '../../engine/rate.js'
import { Store } from '../../engine/store.js'
import { Swarm } from '../../engine/swarm.js'
import type { FileTorrent } from './torrent.js'

/** A running seeder; hosts dial `address:port` and know it by `peerId`. */
export interface Seeder {
  port: number
  /** Peer id (hex) the agents tell the runner's wire by. */
  peerId: string
  /** Bytes the runner has uploaded so far. */
  uploaded(): number
  close(): Promise<void>
}

/**
 * Seeds on the first free port of `ports` (a firewall can then name it), else on any free port; sends
 * at most `uploadLimit` bytes per second to all hosts together when given.
 */
export async function startSeeder(file: string, t: FileTorrent, opts: { ports: number[]; seal: RunSeal; uploadLimit?: number }): Promise<Seeder> {
  const pieces = Math.max(1, Math.ceil(t.size / t.pieceLength))
  const peerId = crypto.randomBytes(20)
  const swarm = new Swarm({
    meta: { infoHash: Buffer.from(t.infoHash, 'hex'), pieceLength: t.pieceLength, length: t.size, pieceHashes: t.pieceHashes },
    seal: opts.seal,
    peerId,
    store: new Store({ path: file, length: t.size }),
    have: Bitfield.full(pieces),
    limits: opts.uploadLimit ? { upload: new RateLimit(opts.uploadLimit) } : undefined,
  })
  let port: number
  try {
    port = await swarm.listen([...opts.ports, 0])
  } catch (err) {
    await swarm.close()
    throw err
  }
  return { port, peerId: peerId.toString('hex'), uploaded: () => swarm.uploaded, close: () => swarm.close() }
}
