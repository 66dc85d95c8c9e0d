// How a run ends on real sshd hosts when something stops: a timeout during the release, the runner killed
// or frozen mid-transfer (the agents leave on their own, the next run resumes), an agent that falls silent.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { clusterForFile, endedAfterEach, type TestFile } from './support/fixture.js'
import type { Cluster, ClusterHost } from './support/cluster.js'
import { herd, nodeWrapper, partialBytes, randomFile, startHerd as startHerdIn, verifiedAtStart, waitUntil, type StartedHerd } from './support/herd.js'

const MiB = 1024 * 1024
let cluster: Cluster
let work: string
let big: TestFile

const skip = clusterForFile({ hosts: 2, rateMbit: 100, prefix: 'herd-run-end-', file: { name: 'big.bin', bytes: 96 * MiB } }, (fx) => ({ cluster, work, file: big } = fx))

/** Runs and frozen processes a test started, ended after each test. */
const cleanups = endedAfterEach()

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

/** A host's log of a run. */
const logOf = (logs: string, h: ClusterHost) => fs.readFileSync(path.join(logs, `${h.alias}.log`), 'utf8')

test('a --timeout that ends while the agents are being released: the finished run stays finished (exit 0, not interrupted), and the agent that did not exit is killed', { skip, timeout: 120_000 }, async () => {
  const h = cluster.hosts[0]!
  const small = randomFile(work, 'small.bin', 1 * MiB)
  const dest = '/srv/released.bin'
  // The post-command freezes the host's agent (its pid is in the destination's lock): releasing it then
  // takes the runner's whole 10 s grace, and the 8 s timeout ends during it.
  const freeze = `kill -STOP "$(sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p' "$HOME"/.cache/herd-action/lock-*.json)"`
  const began = Date.now()
  const logs = path.join(work, 'logs-released')
  const run = startHerd([small.path, dest, '--hostlist', h.alias, '--timeout', '8', '--post-command', freeze, '--log-dir', logs])
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
  // The agent that never exited (frozen here; node hanging in its own shutdown looks the same) was killed.
  assert.match(logOf(logs, h), /the agent \(pid \d+\) had not exited 10 s after its release; killed it/)
  assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 5_000), [], `${h.alias}: processes left running`)
})


test('an agent frozen before it is ready is killed when the run stops it (--timeout): nothing of herd stays on the host', { skip, timeout: 120_000 }, async () => {
  const h = cluster.hosts[1]!
  const small = randomFile(work, 'early.bin', 1 * MiB)
  // A --node wrapper whose agent stops itself (SIGSTOP) right after its first word, the `alive` with its PID.
  fs.writeFileSync(cluster.hostPath(h, '/root/freeze-at-start.mjs'), [
    'const write = process.stdout.write.bind(process.stdout)',
    "process.stdout.write = (chunk, ...rest) => { const r = write(chunk, ...rest); if (String(chunk).includes('\"alive\"')) setImmediate(() => process.kill(process.pid, 'SIGSTOP')); return r }",
  ].join('\n'))
  fs.writeFileSync(cluster.hostPath(h, '/root/node-freezing'), nodeWrapper(`exec ${process.execPath} --import /root/freeze-at-start.mjs "$@"`), { mode: 0o755 })
  const logs = path.join(work, 'logs-frozen-start')
  try {
    const r = await herd(cluster, [small.path, '/srv/frozen-start.bin', '--hostlist', h.alias, '--node', '/root/node-freezing', '--timeout', '6', '--log-dir', logs])
    assert.equal(r.code, 1, r.stderr)
    assert.equal(r.report!.hosts[0]!.status, 'timed-out')
    const log = logOf(logs, h)
    assert.doesNotMatch(log, /agent ready/, 'the agent was to freeze before it was ready')
    assert.match(log, /the agent \(pid \d+\) had not exited 10 s after it was stopped; killed it/)
    assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 5_000), [], `${h.alias}: processes left running`)
  } finally {
    for (const pid of await agentsOn(h)) process.kill(pid, 'SIGKILL')
  }
})

/** Runs herd again to `dest`: every host resumes from the pieces it kept and ends with the file. */
async function rerunResumes(dest: string, logs: string): Promise<void> {
  const r = await herd(cluster, [big.path, dest, '--hostlist', cluster.hosts.map((h) => h.alias).join(','), '--log-dir', logs])
  assert.equal(r.code, 0, r.stderr)
  // The file is unchanged since the first run: its hashes are that run's, and every host still checks them.
  assert.match(r.stderr, /hashes taken from an earlier run \(the file is unchanged since\)/)
  for (const h of cluster.hosts) {
    assert.equal(await cluster.sha256On(h, dest), big.sha256, `${h.alias}: sha256`)
    const resumed = verifiedAtStart(logOf(logs, h))[0] ?? 0
    assert.ok(resumed >= 16 * MiB, `${h.alias} started the re-run with its verified pieces (${resumed} bytes)`)
    assert.ok(r.report!.hosts.find((x) => x.host === h.alias)!.downloaded <= 96 * MiB - resumed + 8 * MiB, `${h.alias} fetched only what it lacked`)
  }
  for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 15_000), [], `${h.alias}: processes left running`)
}

/** Starts a push to `dest` and resolves once every host holds at least a quarter of the file. */
async function midTransfer(dest: string): Promise<StartedHerd> {
  const run = startHerd([big.path, dest, '--hostlist', cluster.hosts.map((h) => h.alias).join(',')])
  await waitUntil('every host to hold a quarter of the file', () => cluster.hosts.every((h) => partialBytes(cluster, h, dest) >= 24 * MiB), 60_000)
  return run
}

test('the runner killed (SIGKILL) mid-transfer: every agent exits on its own, keeps its verified pieces, and a re-run resumes', { skip, timeout: 180_000 }, async () => {
  const dest = '/srv/runner-killed.bin'
  const run = await midTransfer(dest)
  process.kill(-run.pid, 'SIGKILL')
  await run.done
  // Their SSH sessions end with the runner: each agent sees its input close and leaves.
  for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 15_000), [], `${h.alias}: an agent outlived the runner`)
  for (const h of cluster.hosts) {
    assert.ok(partialBytes(cluster, h, dest) >= 24 * MiB, `${h.alias} kept its temporary file`)
    assert.equal(fs.existsSync(cluster.hostPath(h, dest)), false, `${h.alias}: no partial file at the destination`)
  }
  await rerunResumes(dest, path.join(work, 'logs-killed'))
})

test('the runner frozen (SIGSTOP) mid-transfer: every agent gives up after 30 s without a word, keeps its verified pieces, and a re-run resumes', { skip, timeout: 180_000 }, async () => {
  const dest = '/srv/runner-frozen.bin'
  const run = await midTransfer(dest)
  process.kill(-run.pid, 'SIGSTOP')
  cleanups.add(() => {
    try {
      process.kill(-run.pid, 'SIGCONT')
    } catch {}
  })
  const frozenAt = Date.now()
  // The runner's connections stay open: only the agents' own heartbeat can end them.
  await waitUntil('every agent to exit', async () => {
    for (const h of cluster.hosts) if ((await agentsOn(h)).length > 0) return false
    return true
  }, 60_000)
  const after = (Date.now() - frozenAt) / 1000
  assert.ok(after >= 25, `the agents waited for the runner's silence to last (${after.toFixed(1)} s)`)
  for (const h of cluster.hosts) assert.ok(partialBytes(cluster, h, dest) >= 24 * MiB, `${h.alias} kept its temporary file`)
  run.kill()
  await run.done
  await rerunResumes(dest, path.join(work, 'logs-frozen'))
})

test('an agent that falls silent mid-transfer (frozen) is stopped by the runner after 60 s and retried; the host gets the file', { skip, timeout: 240_000 }, async () => {
  const dest = '/srv/agent-silent.bin'
  const silent = cluster.hosts[0]!
  const logs = path.join(work, 'logs-silent')
  // No stall watchdog before the silence one: this host's frozen agent moves nothing either.
  const run = startHerd([big.path, dest, '--hostlist', cluster.hosts.map((h) => h.alias).join(','), '--retry', '2', '--stall-timeout', '600', '--log-dir', logs])
  await waitUntil(`${silent.alias} to hold a quarter of the file`, () => partialBytes(cluster, silent, dest) >= 24 * MiB, 60_000)
  const [agent] = await agentsOn(silent)
  assert.ok(agent, `an agent on ${silent.alias}`)
  killLater(agent)
  process.kill(agent, 'SIGSTOP')
  const r = await run.done
  assert.equal(r.code, 0, r.stderr)
  const host = r.report!.hosts.find((x) => x.host === silent.alias)!
  assert.equal(host.attempts, 2, host.cause)
  const log = logOf(logs, silent)
  assert.match(log, /the agent sent nothing for 60 s; stopping it/)
  assert.match(log, /attempt 1 failed \(agent-silent\): the agent stopped answering for 60 s \(is the host overloaded\?\); it was stopped/)
  assert.match(log, new RegExp(`the agent \\(pid ${agent}\\) had not exited 10 s after it was stopped; killed it`))
  assert.ok((verifiedAtStart(log).at(-1) ?? 0) >= 16 * MiB, 'the retry resumed from the verified pieces')
  for (const h of cluster.hosts) assert.equal(await cluster.sha256On(h, dest), big.sha256, `${h.alias}: sha256`)
  assert.equal(fs.existsSync(`/proc/${agent}`), false, 'the frozen agent is gone')
  for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 15_000), [], `${h.alias}: processes left running`)
})
