// How a run ends on real sshd hosts when the runner's side goes wrong: a timeout during the release, the
// runner killed or frozen mid-transfer (the agents leave on their own, the next run resumes), a silent agent.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, afterEach, before, test } from 'node:test'
import { openClusterFixture, type ClusterFixture, type TestFile } from './support/fixture.js'
import { canRunCluster, type Cluster, type ClusterHost } from './support/cluster.js'
import { herd, leftovers, randomFile, startHerd as startHerdIn, waitUntil, type StartedHerd } from './support/herd.js'

const can = canRunCluster()
const skip = can.ok ? false : can.why
const MiB = 1024 * 1024
let fx: ClusterFixture | undefined
let cluster: Cluster
let work: string
let big: TestFile

before(async () => {
  if (!can.ok) return
  fx = await openClusterFixture({ hosts: 2, rateMbit: 100, prefix: 'herd-run-end-', file: { name: 'big.bin', bytes: 96 * MiB } })
  ;({ cluster, work, file: big } = fx)
})

/** Runs and frozen processes a test started: a test that fails half way must not leave them behind. */
const cleanups = new Set<() => void>()
afterEach(() => {
  for (const clean of cleanups) clean()
  cleanups.clear()
})

after(() => fx?.close())

function startHerd(args: string[]): StartedHerd {
  const run = startHerdIn(cluster, args)
  cleanups.add(run.kill)
  return run
}

/** The herd agents running on a host. */
async function agentsOn(h: ClusterHost): Promise<number[]> {
  return (await cluster.strayProcesses(h)).filter((p) => /^herd-agent\b/.test(p.cmdline)).map((p) => p.pid)
}

/** SIGKILL for a process the test froze, also when the test fails before it lets it go. */
function killLater(pid: number): void {
  cleanups.add(() => {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  })
}

test('a --timeout that ends while the agents are being released: the finished run stays finished (exit 0, not interrupted)', { skip, timeout: 120_000 }, async () => {
  const h = cluster.hosts[0]!
  const small = randomFile(work, 'small.bin', 1 * MiB)
  const dest = '/srv/released.bin'
  // The post-command freezes the host's agent (its pid is in the destination's lock): releasing it then
  // takes the runner's whole 10 s grace, and the 8 s timeout ends during it.
  const freeze = `kill -STOP "$(sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p' "$HOME"/.cache/herd-action/lock-*.json)"`
  const began = Date.now()
  const run = startHerd([small.path, dest, '--hostlist', h.alias, '--timeout', '8', '--post-command', freeze])
  await waitUntil(`${h.alias}'s agent to be frozen`, async () => {
    for (const pid of await agentsOn(h)) {
      killLater(pid)
      if (/^T/m.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '')) return true
    }
    return false
  }, 60_000)
  const r = await run.done
  const took = Date.now() - began
  assert.ok(r.report, r.stderr)
  const host = r.report.hosts[0]!
  assert.ok(host.seconds < 8, `the host settled before the timeout (${host.seconds} s)`)
  assert.ok(took > 8000, `the release outlasted the timeout (${took} ms)`)
  assert.equal(r.report.interrupted, undefined, r.stderr)
  assert.equal(host.status, 'ok', host.cause)
  assert.equal(r.code, 0, r.stderr)
  assert.equal(await cluster.sha256On(h, dest), small.sha256)
})
