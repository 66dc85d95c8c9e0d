// Reads the torrent the runner made into what the engine needs: info hash, piece length, size, piece hashes.
import crypto from 'node:crypto'
import bencode from 'bencode'
import type { Metainfo } from './swarm.js'

/** The metainfo of a bencoded single-file .torrent, and its announce URL (if any). */
export function readTorrent(bytes: Uint8Array): Metainfo & { announce?: string } {
  const torrent = bencode.decode(bytes) as { announce?: Uint8Array; info?: Record<string, unknown> }
  const info = torrent.info
  if (!info || typeof info.length !== 'number' || typeof info['piece length'] !== 'number' || !(info.pieces instanceof Uint8Array)) {
    throw new Error('not a single-file torrent')
  }
  const pieceHashes = Buffer.from(info.pieces)
  const pieceLength = info['piece length']
  const pieces = Math.max(1, Math.ceil(info.length / pieceLength))
  if (pieceHashes.length !== pieces * 20) throw new Error(`torrent has ${pieceHashes.length / 20} piece hashes for ${pieces} pieces`)
  return {
    // Our own torrents are bencoded canonically, so encoding the info again gives the runner's bytes.
    infoHash: crypto.createHash('sha1').update(bencode.encode(info)).digest(),
    pieceLength,
    length: info.length,
    pieceHashes,
    announce: torrent.announce ? Buffer.from(torrent.announce).toString() : undefined,
  }
}
