// Reused buffers for received records: a block's bytes live in one of them from the socket to the file.
//
// Why: node's decipher hands out a fresh buffer per call, and a block kept until its write lands outlives
// V8's young collections; such buffers were freed only by full collections, so an agent carried 35-72 MiB
// of finished blocks. Copying each decrypted slice into a pooled buffer at once lets the slice die young
// and keeps the blocks in a few buffers used again and again.

/** Buffers kept for reuse; past this, given-back buffers are left to the collector. */
const KEEP = 16

export class BlockPool {
  private readonly free: ArrayBuffer[] = []
  /** Handed out and not yet given back: only these are taken back, once (a second give is ignored). */
  private readonly lent = new Set<ArrayBuffer>()
  /** The most buffers out at once: the agent logs it. */
  peak = 0

  constructor(readonly capacity: number) {}

  /** A buffer of `length` bytes (at most `capacity`), uninitialised. */
  take(length: number): Buffer {
    if (length > this.capacity) throw new Error(`a pooled buffer holds at most ${this.capacity} bytes, not ${length}`)
    const ab = this.free.pop() ?? (Buffer.allocUnsafeSlow(this.capacity).buffer as ArrayBuffer)
    this.lent.add(ab)
    if (this.lent.size > this.peak) this.peak = this.lent.size
    return Buffer.from(ab, 0, length)
  }

  /** Buffers handed out and not yet given back. */
  get out(): number {
    return this.lent.size
  }

  /** Whether `view` is of a buffer handed out and not yet given back. */
  owns(view: Uint8Array): boolean {
    return this.lent.has(view.buffer as ArrayBuffer)
  }

  /** Gives back the buffer behind `view` once nothing reads or writes it any more. */
  give(view: Uint8Array): void {
    const ab = view.buffer as ArrayBuffer
    if (!this.lent.delete(ab)) return
    if (this.free.length < KEEP) this.free.push(ab)
  }
}
