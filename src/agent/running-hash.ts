// The whole file's SHA-256, taken in a worker thread while the file arrives: it hashes the written and
// verified prefix as that grows, so the check before the rename only has the last pieces left to read;
// and it flushes that prefix to disk as it goes, so the fsync before the rename only has the tail left.
import { Worker } from 'node:worker_threads'

// Plain CommonJS for `eval`: the worker reads the file itself (page cache) through one reused buffer.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const fs = require('node:fs')
const hash = require('node:crypto').createHash('sha256')
const fd = fs.openSync(workerData.path, 'r')
const buf = Buffer.allocUnsafe(1 << 20)
let at = 0
let flushed = 0
parentPort.on('message', (m) => {
  try {
    while (at < m.upTo) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, m.upTo - at), at)
      if (n === 0) throw new Error('the file ends before its verified pieces do')
      hash.update(buf.subarray(0, n))
      at += n
    }
    if (workerData.flushBytes > 0 && at - flushed >= workerData.flushBytes && !m.digest) {
      fs.fdatasyncSync(fd)
      flushed = at
    }
    if (m.digest) {
      fs.closeSync(fd)
      parentPort.postMessage({ digest: hash.digest('hex') })
    }
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message) })
  }
})
`

/** Posting every block would cost more in messages than it saves: the worker is told in steps of this. */
const STEP = 8 * 1024 * 1024
/**
 * The worker flushes the file to disk each time this much more of it is hashed. Without it the whole
 * file waited in the page cache for the fsync before the rename (0.5-0.6 s for 1 GiB here, seconds on
 * a slower disk, and as much dirty memory as the file is large); fdatasync on the worker's thread
 * costs the transfer nothing. The agent's main thread never waits for it.
 */
const FLUSH_BYTES = 64 * 1024 * 1024

export class RunningHash {
  private readonly worker: Worker
  private told = 0
  private result: Promise<string>

  /** `flush`: also flush the hashed prefix to disk as it grows (a file that stays; not a folder's payload). */
  constructor(path: string, opts: { flush: boolean }) {
    this.worker = new Worker(WORKER, { eval: true, workerData: { path, flushBytes: opts.flush ? FLUSH_BYTES : 0 } })
    this.worker.unref()
    this.result = new Promise((resolve, reject) => {
      this.worker.on('message', (m: { digest?: string; error?: string }) => (m.digest ? resolve(m.digest) : reject(new Error(m.error))))
      this.worker.on('error', reject)
    })
    this.result.catch(() => {}) // read by digest(); an early failure must not go unhandled meanwhile
  }

  /** The first `upTo` bytes are written and verified: hash them when enough is new. */
  advance(upTo: number): void {
    if (upTo - this.told < STEP) return
    this.told = upTo
    this.worker.postMessage({ upTo })
  }

  /** The SHA-256 of the first `size` bytes (the whole file, once every piece is in). */
  async digest(size: number): Promise<string> {
    this.worker.postMessage({ upTo: size, digest: true })
    try {
      return await this.result
    } finally {
      void this.worker.terminate()
    }
  }

  stop(): void {
    void this.worker.terminate()
  }
}
