// The runner's pieces wait for the hosts' set-up: when the gate opens, and what does not hold it.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SetupGate } from '../src/core/setup-gate.js'

/** Resolves when the gate opens, rejects after `ms`. */
function opened(gate: SetupGate, ms: number): Promise<number> {
  const began = Date.now()
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the gate did not open in ${ms} ms`)), ms)
    gate.whenOpen(() => {
      clearTimeout(t)
      resolve(Date.now() - began)
    })
  })
}

const slowNever = { slowConnectMs: 60_000, maxHoldMs: 60_000 }

test('the gate opens once every host is fetching, done, failed or waiting for a retry; waiting and starting hosts hold it', () => {
  const gate = new SetupGate(['a', 'b', 'c', 'd', 'e'], slowNever)
  let open = false
  gate.whenOpen(() => (open = true))
  for (const [host, state] of [['a', 'connecting'], ['a', 'starting'], ['b', 'connecting'], ['a', 'fetching'], ['b', 'failed'], ['c', 'retrying'], ['d', 'done']] as const) {
    gate.onState(host, state)
    assert.equal(open, false, `open after ${host} ${state} with e not yet connecting`)
  }
  gate.onState('e', 'connecting')
  gate.onState('e', 'starting')
  assert.equal(open, false, 'a starting host holds it')
  gate.onState('e', 'fetching')
  assert.equal(open, true)
  let late = false
  gate.whenOpen(() => (late = true))
  assert.equal(late, true, 'once open, whenOpen runs at once')
  gate.open()
})

test('a host whose connect takes longer than slowConnectMs stops holding the gate; one that moves on in time does not', async () => {
  const gate = new SetupGate(['dead', 'fine'], { slowConnectMs: 100, maxHoldMs: 60_000 })
  gate.onState('fine', 'connecting')
  gate.onState('fine', 'starting') // past its connect: it holds until its agent fetches
  gate.onState('dead', 'connecting')
  const ms = opened(gate, 5_000)
  setTimeout(() => gate.onState('fine', 'fetching'), 300)
  assert.ok((await ms) >= 250, 'opened before the starting host was fetching')
})

test('the gate opens after maxHoldMs whatever the hosts do, and open() ends it at once', async () => {
  const gate = new SetupGate(['stuck'], { slowConnectMs: 60_000, maxHoldMs: 150 })
  gate.onState('stuck', 'starting')
  assert.ok((await opened(gate, 5_000)) >= 100)
  const ended = new SetupGate(['x'], slowNever)
  let open = false
  ended.whenOpen(() => (open = true))
  ended.open()
  assert.equal(open, true)
})

test('no hosts: open from the start', () => {
  let open = false
  new SetupGate([], slowNever).whenOpen(() => (open = true))
  assert.equal(open, true)
})
