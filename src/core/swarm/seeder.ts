// The runner's seeder: serves the local file in place, read-only, to the run's hosts and to no one else.
import crypto from 'node:crypto'
import v8 from 'node:v8'
import { Bitfield } from '../../engine/bitfield.js'
import type { RunSeal } from '../../engine/seal.js'
import { RateLimit } from '../../engine/rate.js'
import { Store } from '../../engine/store.js'
import { Swarm } from '../../engine/swarm.js'
import { SERVING } from '../../engine/serve-slots.js'
import type { FileTorrent } from './torrent.js'

/** A running seeder; hosts dial `address:port` and know it by `peerId`. */
export interface Seeder {
  port: number
  /** Peer id (hex) the agents tell the runner's wire by. */
  peerId: string
  /** Bytes the runner has uploaded so far. */
  uploaded(): number
  /** Ends `held`: sends what hosts asked meanwhile, and on. */
  sendOn(): void
  /** When it began to send (ms since the epoch); undefined while it holds back. */
  sendingSince(): number | undefined
  close(): Promise<void>
}

/**
 * Every sealed record the seeder sends is a buffer outside V8's heap (the cipher's output), held until
 * the socket has sent it, so it outlives the young generation and only a full collection frees it. Past
 * a few MiB of such memory V8 starts incremental marking: about 60 full collections per GiB sent, each
 * marking the whole heap in steps (1 GiB to one host: 0.8 s of the runner's 3.9 s of user CPU). Without
 * incremental marking V8 makes fewer, atomic ones (18 per GiB): user CPU 3.9 -> 2.7 s, herd 5.5 -> 4.5 s.
 * The agents measured no gain (they run with a 1 MiB young generation for their memory).
 */
function tuneCollectorForSending(): void {
  v8.setFlagsFromString('--no-incremental-marking')
}

/**
 * Seeds on the first free port of `ports` (a firewall can then name it), else on any free port; sends
 * at most `uploadLimit` bytes per second to all hosts together when given. `held`: it takes requests but
 * sends no block until `sendOn` (the hosts' set-up first).
 */
export async function startSeeder(file: string, t: FileTorrent, opts: { ports: number[]; seal: RunSeal; uploadLimit?: number; held?: boolean }): Promise<Seeder> {
  const pieces = Math.max(1, Math.ceil(t.size / t.pieceLength))
  const peerId = crypto.randomBytes(20)
  tuneCollectorForSending()
  const swarm = new Swarm({
    meta: { infoHash: Buffer.from(t.infoHash, 'hex'), pieceLength: t.pieceLength, length: t.size, pieceHashes: t.pieceHashes },
    seal: opts.seal,
    peerId,
    store: new Store({ path: file, length: t.size }),
    have: Bitfield.full(pieces),
    limits: opts.uploadLimit ? { upload: new RateLimit(opts.uploadLimit) } : undefined,
    maxServing: SERVING,
  })
  let since: number | undefined
  if (opts.held) swarm.holdBack()
  else since = Date.now()
  let port: number
  try {
    port = await swarm.listen([...opts.ports, 0])
  } catch (err) {
    await swarm.close()
    throw err
  }
  return {
    port,
    peerId: peerId.toString('hex'),
    uploaded: () => swarm.uploaded,
    sendOn: () => {
      since ??= Date.now()
      swarm.sendOn()
    },
    sendingSince: () => since,
    close: () => swarm.close(),
  }
}
