// The swarm simulation (bench/sim) on a small push: sane figures, and the agents' piece policy visibly at work in it.
import test from 'node:test'
import assert from 'node:assert/strict'
import { simulate, type Scenario } from '../bench/sim/sim.js'

const small: Scenario = {
  hosts: 16,
  sizeBytes: 4 * 1024 * 1024,
  pieceLength: 64 * 1024,
  rateMbit: 100,
  runnerMbit: 100,
  efficiency: 0.9,
  slowFraction: 0,
  slowFactor: 0.25,
  latencyMs: 0.5,
  joinSpread: 0.5,
  lateFraction: 0,
  lateBy: 0,
  failFraction: 0,
  failWithin: 0,
  peerList: 82,
  trackerCache: 1000,
  maxPeers: 40,
  serving: 8,
  seed: 7,
}

test('16 hosts, a 4 MiB file: every host completes, no faster than one copy over one link, the runner sends at least one copy', () => {
  const r = simulate(small)
  assert.equal(r.completed, 16)
  assert.equal(r.stuck, 0)
  assert.equal(r.pieces, 64)
  assert.ok(r.seconds >= r.bound, `${r.seconds} s against a bound of ${r.bound} s`)
  assert.ok(r.p50 <= r.p99 && r.p99 <= r.seconds)
  assert.ok(r.runnerCopies >= 1, `runner sent ${r.runnerCopies} copies`)
  assert.equal(r.peers, 16, 'every host meets the 15 others and the runner')
  // The same seed, the same run.
  assert.deepEqual({ ...simulate(small), wallSeconds: 0 }, { ...r, wallSeconds: 0 })
})

test('the stripe policy is what the simulation runs: about one copy from the runner, and N copies with every host owning every piece', () => {
  const striped = simulate(small)
  assert.ok(striped.runnerCopies < 1.2, `with stripes the runner sent ${striped.runnerCopies} copies`)
  // Without the runner's turns: with them, pieces waiting there are taken back as peers get them (2.6 copies).
  const unstriped = simulate({ ...small, stripes: false, serving: 0 })
  assert.equal(unstriped.completed, 16)
  assert.ok(unstriped.runnerCopies > 8, `without stripes the runner sent ${unstriped.runnerCopies} copies`)
  assert.ok(unstriped.seconds > 4 * striped.seconds, `${unstriped.seconds} s without stripes, ${striped.seconds} s with`)
})

test('the runner\'s turns, a piece at a time to 8 hosts, put first copies into the swarm sooner than sending to every host at once', () => {
  // 64 hosts asking the runner within 0.2 s for 4 pieces each: sent to all at once, every first copy is through at the end.
  const contended = { ...small, hosts: 64, sizeBytes: 64 * 1024 * 1024, pieceLength: 256 * 1024, joinSpread: 0.2 }
  const turns = simulate(contended)
  const atOnce = simulate({ ...contended, serving: 0 })
  for (const r of [turns, atOnce]) assert.equal(r.completed, 64)
  assert.ok(turns.seconds < 0.95 * atOnce.seconds, `${turns.seconds} s with turns, ${atOnce.seconds} s sending to all at once`)
  assert.ok(turns.runnerCopies < 1.05, `with turns the runner sent ${turns.runnerCopies} copies`)
})

test('slow hosts take at least four bounds, and finish no earlier than the others; hosts that die are counted apart and the rest still complete', () => {
  const slow = simulate({ ...small, sizeBytes: 16 * 1024 * 1024, pieceLength: 256 * 1024, slowFraction: 0.25 })
  assert.equal(slow.completed, 16)
  assert.ok(slow.slowP50 !== undefined && slow.slowP50 >= slow.othersP50, `slow hosts' p50 ${slow.slowP50} s, the others' ${slow.othersP50} s`)
  // A quarter of the rate: a slow host cannot take the file in less than four bounds.
  assert.ok(slow.seconds >= 4 * slow.bound)
  const failing = simulate({ ...small, failFraction: 0.125, failWithin: 0.2 })
  assert.equal(failing.failed, 2)
  assert.equal(failing.completed, 14)
})
