// The file a side serves from and writes into: blocks at their offsets, written off the event loop.
import fs from 'node:fs'
import crypto from 'node:crypto'

export interface StoreOptions {
  path: string
  length: number
  /** Accept writes (an agent's temporary file, which must exist: it is never created or truncated here). */
  writable?: boolean
}

/**
 * Pieces travel in blocks of at most 1 MiB, one record each. 256 KiB blocks were tried (a received
 * block still cached when it is hashed and copied into the file): on unshaped links, 4 hosts, agents'
 * system CPU 2.7-3.2 -> 1.7-2.1 s per GiB and herd 15.4-17.0 -> 14.2-14.8 s, but on 1000 Mbit/s links
 * (2 GiB to 4 hosts) herd took 32.4 -> 38.3 s, agents' CPU 12.5 -> 15.3 s each (4x the records and
 * requests): kept at 1 MiB.
 */
export const BLOCK = 1024 * 1024

/** Reads and writes one file by absolute offset; writes go to the thread pool, never the event loop. */
export class Store {
  readonly length: number
  private fd: number | undefined
  private readonly writing = new Map<number, Promise<void>>()
  /** Bytes handed to `write` and not yet in the file: received blocks wait in memory meanwhile. */
  pendingBytes = 0
  /** Called as each write settles: a reader of `pendingBytes` may go on. */
  onWritten: () => void = () => {}
  /**
   * Buffers of finished file reads, reused: a fresh 1 MiB buffer per block read is a fresh mapping of
   * 256 pages to fault in and zero, which cost the runner more than the read itself.
   */
  private readonly spare: Buffer[] = []
  private readonly lent = new WeakMap<Buffer[], Buffer>()

  constructor(opts: StoreOptions) {
    this.length = opts.length
    // The temporary file is written only where it is one: never through a link put in its place.
    this.fd = fs.openSync(opts.path, opts.writable ? fs.constants.O_RDWR | fs.constants.O_NOFOLLOW : fs.constants.O_RDONLY)
  }

  /**
   * Writes `parts` at `position` (with every retry a short write needs). They are the caller's again
   * once the promise settles; a read of that range waits for it.
   */
  write(position: number, parts: Buffer[]): Promise<void> {
    const fd = this.fd
    if (fd === undefined) return Promise.reject(new Error('store is closed'))
    const bytes = byteLength(parts)
    this.pendingBytes += bytes
    // A write to a range still being written waits for it: the thread pool keeps no order, and a piece
    // fetched again after a bad copy must not be overwritten by that copy's write landing last.
    const before = this.writing.get(position)
    const written = before ? before.then(noop, noop).then(() => writeAll(fd, parts, position)) : writeAll(fd, parts, position)
    const done = written.finally(() => {
      if (this.writing.get(position) === done) this.writing.delete(position)
      this.pendingBytes -= bytes
      this.onWritten()
    })
    this.writing.set(position, done)
    return done
  }

  /** Settles once every write issued so far has settled; rejects with the first failure. */
  async flushed(): Promise<void> {
    await Promise.all([...this.writing.values()])
  }

  /**
   * The bytes [position, position + length), read into a reused buffer (blocks just written come from
   * the page cache: keeping them in memory too served 0 of 729 uploads at 4 unshaped hosts).
   * The caller hands them back with `release` once it has used them (sealing copies them out).
   */
  async read(position: number, length: number): Promise<Buffer[]> {
    if (this.fd === undefined) throw new Error('store is closed')
    if (position + length > this.length) throw new Error(`read past the end (${position} + ${length} > ${this.length})`)
    await this.writing.get(position)
    const spare = this.spare.pop()
    const whole = spare && spare.length >= length ? spare : Buffer.allocUnsafe(Math.max(length, BLOCK))
    const buf = whole.subarray(0, length)
    let got = 0
    while (got < length) {
      const n = await new Promise<number>((resolve, reject) =>
        fs.read(this.fd!, buf, got, length - got, position + got, (err, bytes) => (err ? reject(err) : resolve(bytes))),
      )
      // Past the end of a temporary file still filling up: the block is simply not there yet.
      if (n === 0) throw new Error(`short read at ${position + got}`)
      got += n
    }
    const parts = [buf]
    this.lent.set(parts, whole)
    return parts
  }

  /** Takes back what `read` gave once it is no longer used. */
  release(parts: Buffer[]): void {
    const buf = this.lent.get(parts)
    if (!buf) return
    this.lent.delete(parts)
    if (this.spare.length < 4) this.spare.push(buf)
  }

  /** Closes the file (it stays: the agent decides whether a temporary file is kept for a retry). */
  async close(): Promise<void> {
    const fd = this.fd
    this.fd = undefined
    if (fd === undefined) return
    await Promise.allSettled([...this.writing.values()])
    await new Promise<void>((resolve) => fs.close(fd, () => resolve()))
  }
}

function noop(): void {}

export function byteLength(parts: readonly Uint8Array[]): number {
  let n = 0
  for (const p of parts) n += p.length
  return n
}

async function writeAll(fd: number, parts: Buffer[], position: number): Promise<void> {
  let rest = parts
  while (rest.length) {
    const wrote = await new Promise<number>((resolve, reject) => fs.writev(fd, rest, position, (err, n) => (err ? reject(err) : resolve(n))))
    position += wrote
    // A short write: drop what went out and go on with the rest.
    let skip = wrote
    const next: Buffer[] = []
    for (const p of rest) {
      if (skip >= p.length) skip -= p.length
      else {
        next.push(skip ? p.subarray(skip) : p)
        skip = 0
      }
    }
    if (wrote === 0 && next.length) throw new Error('write made no progress')
    rest = next
  }
}

/**
 * The pieces a file of `length` bytes already holds, each checked against its hash: a retry resumes from
 * them. Reads what is there once, in order, through one buffer.
 */
export async function piecesPresent(path: string, meta: { length: number; pieceLength: number; pieceHashes: Buffer }, into: { set(i: number): boolean }): Promise<number> {
  const fh = await fs.promises.open(path, 'r')
  let found = 0
  try {
    const { size } = await fh.stat()
    const buf = Buffer.allocUnsafe(meta.pieceLength)
    for (let i = 0, at = 0; at < meta.length; i++, at += meta.pieceLength) {
      const len = Math.min(meta.pieceLength, meta.length - at)
      if (at + len > size) break
      const { bytesRead } = await fh.read(buf, 0, len, at)
      const digest = crypto.createHash('sha1').update(buf.subarray(0, bytesRead)).digest()
      if (digest.equals(meta.pieceHashes.subarray(i * 20, i * 20 + 20)) && into.set(i)) found++
    }
  } finally {
    await fh.close()
  }
  return found
}
