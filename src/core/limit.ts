// A counting semaphore: at most `size` holders at once, the rest wait in order.
export class Limit {
  private active = 0
  private readonly waiting: (() => void)[] = []
  constructor(private readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active < this.size) this.active++
    // The slot is handed to us by a leaving holder, still counted: nobody can take it in between.
    else await new Promise<void>((resolve) => this.waiting.push(resolve))
    try {
      return await fn()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.active--
    }
  }
}
