// Hashes the local file once into a private torrent (SHA-1 pieces) and its SHA-256, in one read.
import fs from 'node:fs'
import crypto from 'node:crypto'
import path from 'node:path'
import bencode from 'bencode'

/** What the runner knows about the file it pushes. */
export interface FileTorrent {
  /** The info dictionary, bencoded: the same for every host. */
  info: Uint8Array
  infoHash: string
  pieceLength: number
  size: number
  sha256: string
  name: string
}

const KiB = 1024
const MiB = 1024 * KiB

/** Piece length for a file size: about 1000-2000 pieces, between 256 KiB and 16 MiB. */
export function pieceLengthFor(size: number): number {
  let length = 256 * KiB
  while (length < 16 * MiB && size / length > 2048) length *= 2
  return length
}

/** Reads the file once, hashing every piece with SHA-1 and the whole with SHA-256. */
export async function hashFile(file: string, opts: { pieceLength?: number; nonce?: Buffer } = {}): Promise<FileTorrent> {
  const handle = await fs.promises.open(file, 'r')
  try {
    const { size } = await handle.stat()
    const pieceLength = opts.pieceLength ?? pieceLengthFor(size)
    const pieceCount = Math.max(1, Math.ceil(size / pieceLength))
    const pieces = Buffer.alloc(pieceCount * 20)
    const whole = crypto.createHash('sha256')
    // Read several pieces per call to keep syscalls few; a piece never straddles two reads.
    const perRead = Math.max(1, Math.floor((8 * MiB) / pieceLength))
    const buf = Buffer.allocUnsafe(perRead * pieceLength)
    let position = 0
    let piece = 0
    while (position < size) {
      const want = Math.min(buf.length, size - position)
      let got = 0
      while (got < want) {
        const { bytesRead } = await handle.read(buf, got, want - got, position + got)
        if (bytesRead === 0) throw new Error(`${file} shrank while it was being hashed`)
        got += bytesRead
      }
      whole.update(buf.subarray(0, got))
      for (let off = 0; off < got; off += pieceLength) {
        const end = Math.min(off + pieceLength, got)
        crypto.createHash('sha1').update(buf.subarray(off, end)).digest().copy(pieces, piece * 20)
        piece++
      }
      position += got
    }
    if (size === 0) crypto.createHash('sha1').update(Buffer.alloc(0)).digest().copy(pieces, 0)
    const name = path.basename(file)
    const info = bencode.encode({
      length: size,
      name,
      'piece length': pieceLength,
      pieces,
      private: 1,
      // A per-run nonce: the info hash of a public file can't be guessed and joined.
      'x-herd-nonce': opts.nonce ?? crypto.randomBytes(16),
    })
    const infoHash = crypto.createHash('sha1').update(info).digest('hex')
    return { info, infoHash, pieceLength, size, sha256: whole.digest('hex'), name }
  } finally {
    await handle.close()
  }
}

/** The .torrent for one host: the shared info dictionary and this host's tracker URL only (none for the seeder). */
export function torrentFileFor(t: FileTorrent, announceUrl?: string): Buffer {
  // Splice the info bytes in unchanged so the info hash stays exactly the runner's.
  const announce = announceUrl === undefined ? '' : `8:announce${announceUrl.length}:${announceUrl}13:announce-listll${announceUrl.length}:${announceUrl}ee`
  const head = Buffer.from(`d${announce}4:info`)
  return Buffer.concat([head, Buffer.from(t.info), Buffer.from('e')])
}
