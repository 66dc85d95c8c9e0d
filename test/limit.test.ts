// The limit on SSH connections opened at once (--concurrency) and post-commands run at once (--post-batch).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Limit } from '../src/core/limit.js'

test('a caller that arrives just as a holder leaves waits its turn: never more than the limit at once', async () => {
  const limit = new Limit(1)
  let active = 0
  let most = 0
  const hold = async (until: Promise<unknown>) => {
    active++
    most = Math.max(most, active)
    await until
    active--
  }
  let release!: () => void
  const first = new Promise<void>((resolve) => (release = resolve))
  let letGo!: () => void
  const later = new Promise<void>((resolve) => (letGo = resolve))
  const runs = [limit.run(() => first), limit.run(() => hold(later))]
  // Reacts to the first holder's end in the same turn as the limit does, before the waiter has resumed.
  runs.push(first.then(() => limit.run(() => hold(later))))
  release()
  await new Promise((resolve) => setImmediate(resolve))
  letGo()
  await Promise.all(runs)
  assert.equal(most, 1)
})

test('many holders and waiters: at most the limit at once, every one runs, in the order they came', async () => {
  const limit = new Limit(3)
  let active = 0
  let most = 0
  const order: number[] = []
  await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      limit.run(async () => {
        order.push(i)
        active++
        most = Math.max(most, active)
        for (let k = 0; k < i % 4; k++) await Promise.resolve()
        active--
        if (i % 5 === 0) throw new Error('a failing holder frees its place too')
      }).catch(() => {}),
    ),
  )
  assert.equal(most, 3)
  assert.deepEqual(order, Array.from({ length: 40 }, (_, i) => i))
})
