// Hashes the local file once into a private torrent (SHA-1 pieces) and its SHA-256, in one read (or none: hash-cache.ts).
import fs from 'node:fs'
import crypto from 'node:crypto'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import bencode from 'bencode'
import { cachedHashes, keepHashes, type ContentHashes } from './hash-cache.js'

/** What the runner knows about the file it pushes: its hashes (`pieceHashes` are the info's `pieces`) and this run's torrent. */
export interface FileTorrent extends ContentHashes {
  /** The info dictionary, bencoded: the same for every host. */
  info: Uint8Array
  infoHash: string
  name: string
  /** The hashes came from an earlier run's (hash-cache.ts): the file was not read. */
  fromCache?: boolean
}

const KiB = 1024
const MiB = 1024 * KiB

/** Every host owns at least this many pieces when the file allows (see pieceLengthFor). */
export const PIECES_PER_HOST = 2
/** The smallest piece. */
export const MIN_PIECE = 16 * KiB
/**
 * The torrent, 20 bytes of hash per piece, travels to every host over SSH: pieces are not halved past
 * the point where those bytes, for all hosts together, would pass this share of the file (2 N pieces to
 * each of N hosts would grow as N²: 54 MB for a 64 MiB file at 1,000 hosts).
 */
export const HASHES_SHARE = 1 / 4

/**
 * Piece length for a file size and a number of hosts: about 1024 pieces, at least 256 KiB and at most
 * 16 MiB (1 MiB for 1 GiB, 256 KiB for 200 MiB and less), then halved (to 16 KiB at the least, and while
 * the hashes stay within HASHES_SHARE) until every host owns PIECES_PER_HOST pieces of the stripes. A
 * host that owns none is starving from its start and asks the runner for pieces no peer has yet (20 MiB
 * to 200 hosts came in 80 pieces: 120 hosts owned none; the simulation: 18.5 copies from the runner at
 * 10,000 hosts with 1,024 pieces). A host offers a piece to the others only once all of it is in and
 * verified, so on slow links small pieces start the hosts' trading sooner; blocks stay at most 1 MiB and
 * are hashed as they arrive, so large pieces cost no memory.
 */
export function pieceLengthFor(size: number, hosts = 1): number {
  let length = 256 * KiB
  while (length < 16 * MiB && size / length > 1024) length *= 2
  const hashBytes = (l: number) => hosts * Math.ceil(size / l) * 20
  while (length > MIN_PIECE && size / length < PIECES_PER_HOST * hosts && hashBytes(length / 2) <= size * HASHES_SHARE) length /= 2
  return length
}

const SHA256_WORKER = `
const { parentPort } = require('node:worker_threads')
const hash = require('node:crypto').createHash('sha256')
parentPort.on('message', (m) => {
  if (m === null) return parentPort.postMessage(hash.digest('hex'))
  hash.update(new Uint8Array(m.buffer, 0, m.length))
  parentPort.postMessage(m.buffer, [m.buffer])
})
`

/** SHA-256 in a worker thread: update() hands a buffer over; returned() gives one back once hashed. */
class Sha256Worker {
  private readonly worker = new Worker(SHA256_WORKER, { eval: true })
  private readonly back: ArrayBuffer[] = []
  private waiting: ((b: ArrayBuffer) => void)[] = []
  private digestWaiter?: (hex: string) => void
  private failure?: Error

  constructor() {
    this.worker.on('message', (m: ArrayBuffer | string) => {
      if (typeof m === 'string') return this.digestWaiter?.(m)
      const w = this.waiting.shift()
      if (w) w(m)
      else this.back.push(m)
    })
    this.worker.on('error', (err) => (this.failure = err))
  }

  update(buffer: ArrayBuffer, length: number): void {
    if (this.failure) throw this.failure
    this.worker.postMessage({ buffer, length }, [buffer])
  }

  returned(): Promise<ArrayBuffer> {
    const b = this.back.shift()
    return b ? Promise.resolve(b) : new Promise((resolve) => this.waiting.push(resolve))
  }

  async digest(): Promise<string> {
    const hex = await new Promise<string>((resolve, reject) => {
      this.digestWaiter = resolve
      this.worker.once('error', reject)
      this.worker.postMessage(null)
    })
    await this.worker.terminate()
    return hex
  }

  stop(): void {
    void this.worker.terminate()
  }
}

/**
 * The file's torrent for this run (a fresh nonce in it): its hashes from an earlier run when the file has
 * not changed since (hash-cache.ts), else from reading it once, kept for the next run. `cache: false` for
 * a file made for this run only (a folder's tar): it would never be found again.
 */
export async function hashFile(file: string, opts: { pieceLength?: number; nonce?: Buffer; hosts?: number; cache?: boolean } = {}): Promise<FileTorrent> {
  const handle = await fs.promises.open(file, 'r')
  let hashes: ContentHashes | undefined
  let fromCache = false
  try {
    // The wall clock in the file system's terms (its times are wall-clock nanoseconds).
    const began = BigInt(Date.now()) * 1_000_000n
    const before = await handle.stat({ bigint: true })
    const size = Number(before.size)
    const pieceLength = opts.pieceLength ?? pieceLengthFor(size, opts.hosts)
    const cache = opts.cache ?? true
    hashes = cache ? await cachedHashes(handle, before, pieceLength) : undefined
    fromCache = hashes !== undefined
    if (!hashes) {
      hashes = await hashContents(handle, file, size, pieceLength)
      if (cache) await keepHashes(handle, before, began, hashes)
    }
  } finally {
    await handle.close()
  }
  const name = path.basename(file)
  const info = bencode.encode({
    length: hashes.size,
    name,
    'piece length': hashes.pieceLength,
    pieces: hashes.pieceHashes,
    private: 1,
    // A per-run nonce: the info hash of a public file can't be guessed and joined.
    'x-herd-nonce': opts.nonce ?? crypto.randomBytes(16),
  })
  const infoHash = crypto.createHash('sha1').update(info).digest('hex')
  return { ...hashes, info, infoHash, name, fromCache }
}

/** Reads the file once, hashing every piece with SHA-1 and the whole with SHA-256. */
async function hashContents(handle: fs.promises.FileHandle, file: string, size: number, pieceLength: number): Promise<ContentHashes> {
  const pieceCount = Math.max(1, Math.ceil(size / pieceLength))
  const pieces = Buffer.alloc(pieceCount * 20)
  // SHA-256 of the whole file runs in a worker while this thread reads and SHA-1s the pieces: the
  // two hashes take about the time of one on two cores. Buffers travel back and forth, never copied.
  const whole = new Sha256Worker()
  // Read several pieces per call to keep syscalls few; a piece never straddles two reads.
  const perRead = Math.max(1, Math.floor((8 * MiB) / pieceLength))
  const free: ArrayBuffer[] = [0, 1, 2].map(() => new ArrayBuffer(perRead * pieceLength))
  let position = 0
  let piece = 0
  try {
    while (position < size) {
      const buf = Buffer.from(free.pop() ?? (await whole.returned()))
      const want = Math.min(buf.length, size - position)
      let got = 0
      while (got < want) {
        const { bytesRead } = await handle.read(buf, got, want - got, position + got)
        if (bytesRead === 0) throw new Error(`${file} shrank while it was being hashed`)
        got += bytesRead
      }
      for (let off = 0; off < got; off += pieceLength) {
        const end = Math.min(off + pieceLength, got)
        crypto.createHash('sha1').update(buf.subarray(off, end)).digest().copy(pieces, piece * 20)
        piece++
      }
      whole.update(buf.buffer as ArrayBuffer, got)
      position += got
    }
  } catch (err) {
    whole.stop()
    throw err
  }
  if (size === 0) crypto.createHash('sha1').update(Buffer.alloc(0)).digest().copy(pieces, 0)
  return { size, pieceLength, pieceHashes: pieces, sha256: await whole.digest() }
}

/** The .torrent for one host: the shared info dictionary and this host's tracker URL only (none for the seeder). */
export function torrentFileFor(t: FileTorrent, announceUrl?: string): Buffer {
  // Splice the info bytes in unchanged so the info hash stays exactly the runner's.
  const announce = announceUrl === undefined ? '' : `8:announce${announceUrl.length}:${announceUrl}13:announce-listll${announceUrl.length}:${announceUrl}ee`
  const head = Buffer.from(`d${announce}4:info`)
  return Buffer.concat([head, Buffer.from(t.info), Buffer.from('e')])
}
