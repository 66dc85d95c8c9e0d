// A chunk store over one file at its final size. The runner seeds its local file with it read-only, an
// agent seeds a destination that already holds the identical file the same way, and an agent downloads
// into its temporary file with it writable. Pieces are whole-piece writes at their offset and block reads.
import fs from 'node:fs'

type Callback<T = void> = (err: Error | null, value?: T) => void

export interface FileStoreOptions {
  path: string
  length: number
  /** Accept puts (the agent's temporary file). The file must exist; it is never created or truncated here. */
  writable?: boolean
  /**
   * Keep up to this many bytes of the most recently written pieces in memory and serve block reads of
   * them from there. Peers ask for a piece soon after its `have`: this spares a read per block of it.
   */
  recentBytes?: number
}

/** abstract-chunk-store over a single file. */
export class FileStore {
  readonly chunkLength: number
  private readonly lastChunkLength: number
  private readonly lastChunkIndex: number
  private readonly writable: boolean
  private readonly recentSlots: number
  /** Insertion order is age: the first key is the oldest piece. */
  private readonly recent = new Map<number, Uint8Array>()
  private fd: number | null = null
  private closed = false
  /** Reads served from the recent pieces, and from the file: the agent logs them. */
  readonly reads = { recent: 0, file: 0 }

  constructor(chunkLength: number, opts: FileStoreOptions) {
    this.chunkLength = chunkLength
    this.lastChunkIndex = Math.max(0, Math.ceil(opts.length / chunkLength) - 1)
    this.lastChunkLength = opts.length - this.lastChunkIndex * chunkLength
    this.writable = opts.writable ?? false
    this.recentSlots = Math.floor((opts.recentBytes ?? 0) / chunkLength)
    this.fd = fs.openSync(opts.path, this.writable ? 'r+' : 'r')
  }

  private chunkLen(index: number): number {
    return index === this.lastChunkIndex ? this.lastChunkLength : this.chunkLength
  }

  put(index: number, buf: Uint8Array, cb: Callback = () => {}): void {
    if (!this.writable) return queueMicrotask(() => cb(new Error('read-only store: the file is complete')))
    if (this.closed || this.fd === null) return queueMicrotask(() => cb(new Error('Storage is closed')))
    if (index > this.lastChunkIndex || buf.length !== this.chunkLen(index)) {
      return queueMicrotask(() => cb(new Error(`chunk ${index} has ${buf.length} bytes, expected ${this.chunkLen(index)}`)))
    }
    const fd = this.fd
    const position = index * this.chunkLength
    const writeFrom = (done: number): void => {
      fs.write(fd, buf, done, buf.length - done, position + done, (err, wrote) => {
        if (err) return cb(err)
        if (done + wrote < buf.length) return writeFrom(done + wrote)
        this.remember(index, buf)
        cb(null)
      })
    }
    writeFrom(0)
  }

  private remember(index: number, buf: Uint8Array): void {
    if (this.recentSlots <= 0) return
    this.recent.delete(index)
    this.recent.set(index, buf)
    if (this.recent.size > this.recentSlots) this.recent.delete(this.recent.keys().next().value!)
  }

  get(index: number, opts: { offset?: number; length?: number } | null | Callback<Uint8Array>, cb?: Callback<Uint8Array>): void {
    if (typeof opts === 'function') return this.get(index, null, opts)
    const done: Callback<Uint8Array> = cb ?? (() => {})
    if (this.closed || this.fd === null) return queueMicrotask(() => done(new Error('Storage is closed')))
    const chunkLen = this.chunkLen(index)
    const offset = opts?.offset ?? 0
    const len = opts?.length ?? chunkLen - offset
    if (index > this.lastChunkIndex || offset + len > chunkLen) {
      return queueMicrotask(() => done(new Error(`chunk ${index} out of range`)))
    }
    const kept = this.recent.get(index)
    if (kept) {
      this.reads.recent++
      // A view, not a copy: the wire writes it to the socket as it is.
      return queueMicrotask(() => done(null, kept.subarray(offset, offset + len)))
    }
    this.reads.file++
    const buf = Buffer.allocUnsafe(len)
    fs.read(this.fd, buf, 0, len, index * this.chunkLength + offset, (err, bytesRead) => {
      if (err) return done(err)
      // Past the end of a temporary file that is still filling up: the piece is simply not there yet.
      if (bytesRead !== len) return done(new Error(`short read of chunk ${index}`))
      done(null, buf)
    })
  }

  close(cb: Callback = () => {}): void {
    if (this.closed) return queueMicrotask(() => cb(null))
    this.closed = true
    this.recent.clear()
    const fd = this.fd
    this.fd = null
    if (fd === null) return queueMicrotask(() => cb(null))
    fs.close(fd, (err) => cb(err ?? null))
  }

  /** Closes; the file stays (the agent decides whether a temporary file is kept for a retry). */
  destroy(cb: Callback = () => {}): void {
    this.close(cb)
  }
}
