// A token bucket for --limit-rate: the bytes one side may send (or receive) per second, over all its peers.

/**
 * Tokens saved while idle, in seconds of the rate: a short burst, so that over any stretch no more than
 * a tenth of a second's worth (and the one block or read that overdraws) passes beyond the rate.
 */
const BURST_SECONDS = 0.1
/** The shortest wait for tokens: fewer timers when many small reads overdraw by a little. */
const MIN_WAIT_MS = 5

/**
 * Bytes are spent as they go (a block sent, a socket read), which may overdraw the bucket: senders and
 * readers then stop until it is back above zero, so the average holds exactly whatever the size of what
 * moves. One timer wakes every waiter at once; each spends again or waits again, in turn.
 */
export class RateLimit {
  private tokens: number
  private at: number
  private readonly burst: number
  private readonly waiting: (() => void)[] = []
  private timer: NodeJS.Timeout | undefined

  /** `now` in milliseconds: the tests' clock, performance.now otherwise. */
  constructor(readonly bytesPerSecond: number, private readonly now: () => number = () => performance.now()) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`a rate must be above 0 bytes per second, not ${bytesPerSecond}`)
    this.burst = bytesPerSecond * BURST_SECONDS
    this.tokens = this.burst
    this.at = now()
  }

  private refill(): void {
    const t = this.now()
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.at) * this.bytesPerSecond) / 1000)
    this.at = t
  }

  /** Tokens are left: the next block may go. */
  get open(): boolean {
    this.refill()
    return this.tokens > 0
  }

  /** Counts `bytes` that went (or came); false when that overdrew the bucket: wait with `whenOpen`. */
  spend(bytes: number): boolean {
    this.refill()
    this.tokens -= bytes
    return this.tokens > 0
  }

  /** Calls `wake` once the bucket is open again (soon, if it is open now). */
  whenOpen(wake: () => void): void {
    this.waiting.push(wake)
    this.schedule()
  }

  private schedule(): void {
    if (this.timer) return
    this.refill()
    const ms = this.tokens > 0 ? 0 : Math.max(MIN_WAIT_MS, Math.ceil((-this.tokens * 1000) / this.bytesPerSecond) + 1)
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (!this.open) return this.schedule()
      for (const wake of this.waiting.splice(0)) wake()
    }, ms)
    // Sockets and the swarm's own timer keep a side alive; a waiting bucket alone does not.
    this.timer.unref()
  }
}
