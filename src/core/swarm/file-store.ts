// A read-only chunk store over one file: the runner seeds its local file with it, and an agent seeds
// a destination that already holds the identical file, without ever opening either for writing.
import fs from 'node:fs'

type Callback<T = void> = (err: Error | null, value?: T) => void

/** abstract-chunk-store over a file that is complete and must not change. */
export class ReadOnlyFileStore {
  readonly chunkLength: number
  private readonly length: number
  private readonly lastChunkLength: number
  private readonly lastChunkIndex: number
  private fd: number | null = null
  private closed = false

  constructor(chunkLength: number, opts: { path: string; length: number }) {
    this.chunkLength = chunkLength
    this.length = opts.length
    this.lastChunkIndex = Math.max(0, Math.ceil(opts.length / chunkLength) - 1)
    this.lastChunkLength = opts.length - this.lastChunkIndex * chunkLength
    this.fd = fs.openSync(opts.path, 'r')
  }

  put(_index: number, _buf: Uint8Array, cb: Callback = () => {}): void {
    queueMicrotask(() => cb(new Error('read-only store: the file is complete')))
  }

  get(index: number, opts: { offset?: number; length?: number } | null | Callback<Buffer>, cb?: Callback<Buffer>): void {
    if (typeof opts === 'function') return this.get(index, null, opts)
    const done: Callback<Buffer> = cb ?? (() => {})
    if (this.closed || this.fd === null) return queueMicrotask(() => done(new Error('Storage is closed')))
    const chunkLen = index === this.lastChunkIndex ? this.lastChunkLength : this.chunkLength
    const offset = opts?.offset ?? 0
    const len = opts?.length ?? chunkLen - offset
    if (index > this.lastChunkIndex || offset + len > chunkLen) {
      return queueMicrotask(() => done(new Error(`chunk ${index} out of range`)))
    }
    const buf = Buffer.allocUnsafe(len)
    fs.read(this.fd, buf, 0, len, index * this.chunkLength + offset, (err, bytesRead) => {
      if (err) return done(err)
      if (bytesRead !== len) return done(new Error(`short read of chunk ${index}: the file changed size`))
      done(null, buf)
    })
  }

  close(cb: Callback = () => {}): void {
    if (this.closed) return queueMicrotask(() => cb(null))
    this.closed = true
    const fd = this.fd
    this.fd = null
    if (fd === null) return queueMicrotask(() => cb(null))
    fs.close(fd, (err) => cb(err ?? null))
  }

  destroy(cb: Callback = () => {}): void {
    this.close(cb)
  }
}
