// A binary min-heap of items by a numeric key, for the simulation's clock and its links' queues (arrays, no per-entry objects).

export class Heap<T> {
  private readonly items: T[] = []
  private readonly keys: number[] = []

  get size(): number {
    return this.items.length
  }

  /** The smallest key, or Infinity when empty. */
  get minKey(): number {
    return this.keys.length ? this.keys[0]! : Infinity
  }

  peek(): T | undefined {
    return this.items[0]
  }

  push(item: T, key: number): void {
    const items = this.items
    const keys = this.keys
    let at = items.length
    items.push(item)
    keys.push(key)
    while (at > 0) {
      const parent = (at - 1) >> 1
      if (keys[parent]! <= key) break
      items[at] = items[parent]!
      keys[at] = keys[parent]!
      at = parent
    }
    items[at] = item
    keys[at] = key
  }

  pop(): T | undefined {
    const items = this.items
    const keys = this.keys
    if (items.length === 0) return undefined
    const top = items[0]!
    const lastItem = items.pop()!
    const lastKey = keys.pop()!
    const n = items.length
    if (n === 0) return top
    let at = 0
    for (;;) {
      let child = 2 * at + 1
      if (child >= n) break
      if (child + 1 < n && keys[child + 1]! < keys[child]!) child++
      if (keys[child]! >= lastKey) break
      items[at] = items[child]!
      keys[at] = keys[child]!
      at = child
    }
    items[at] = lastItem
    keys[at] = lastKey
    return top
  }
}
