// Faults on real sshd hosts (100 Mbit/s links): every run ends, the other hosts get the file, each failure
// is named, a host holds its previous file or the new one, and nothing of herd's stays behind.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { clusterForFile, endedAfterEach, type TestFile } from './support/fixture.js'
import type { Cluster, ClusterHost } from './support/cluster.js'
import { herd, inSshdMounts, leftovers, nodeWrapper, partialBytes as partialBytesOn, randomFile, repoRoot, startHerd as startHerdIn, verifiedAtStart, waitUntil, type StartedHerd } from './support/herd.js'
import { pieceLengthFor } from '../src/core/swarm/torrent.js'

const MiB = 1024 * 1024
// herd's piece length for these files: a killed transfer may lose the pieces it had in flight.
const PIECE = pieceLengthFor(96 * MiB)
let cluster: Cluster
let work: string
let big: TestFile

const skip = clusterForFile({ hosts: 4, rateMbit: 100, prefix: 'herd-faults-', file: { name: 'big.bin', bytes: 96 * MiB } }, (fx) => ({ cluster, work, file: big } = fx))

/** herd runs started detached, killed after each test. */
const detached = endedAfterEach()

const aliases = (hosts: ClusterHost[]) => hosts.map((h) => h.alias).join(',')

async function assertNothingLeftRunning(hosts = cluster.hosts): Promise<void> {
  for (const h of hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 15_000), [], `${h.alias}: processes left running`)
}

/** herd's working folder on a host holds the agent and nothing else once a run is over (no lock, no upload left half done). */
function assertWorkDirClean(h: ClusterHost): void {
  const wd = cluster.hostPath(h, '/root/.cache/herd-action')
  const extra = fs.existsSync(wd) ? fs.readdirSync(wd).filter((n) => !/^agent-[0-9a-f]+\.mjs$/.test(n)) : []
  assert.deepEqual(extra, [], `${h.alias}: left in the working folder`)
}

const partialBytes = (h: ClusterHost, dest: string) => partialBytesOn(cluster, h, dest)

/** Starts herd detached; a test that fails half way kills it in afterEach. */
function startHerd(args: string[]): StartedHerd {
  const run = startHerdIn(cluster, args)
  detached.add(run.kill)
  return run
}

test('a link cut mid-transfer and restored: the host retries, finishes, and keeps the pieces it had verified', { skip, timeout: 180_000 }, async () => {
  const cut = cluster.hosts[1]!
  const dest = '/srv/link-cut.bin'
  const logs = path.join(work, 'logs-link')
  const run = startHerd([big.path, dest, '--hostlist', aliases(cluster.hosts), '--retry', '10', '--log-dir', logs])
  await waitUntil(`${cut.alias} to hold a quarter of the file`, () => partialBytes(cut, dest) >= 24 * MiB, 60_000)
  // Freeze the agent too, so it is surely still there when the host comes back (as when the host never
  // saw the connection drop): the next agent must stop it before it touches the temporary file.
  const [stale] = (await cluster.strayProcesses(cut)).filter((p) => /^herd-agent\b/.test(p.cmdline))
  assert.ok(stale, `an agent on ${cut.alias}`)
  process.kill(stale.pid, 'SIGSTOP')
  await cluster.setLink(cut, false)
  // Back once the runner has given the connection up (keepalive 3 x 5 s) and retries.
  const cutLog = path.join(logs, `${cut.alias}.log`)
  await waitUntil('the runner to give up the cut connection', () => fs.readFileSync(cutLog, 'utf8').includes('attempt 1 failed'), 60_000)
  await cluster.setLink(cut, true)
  const r = await run.done
  assert.equal(r.code, 0, r.stderr)
  for (const h of cluster.hosts) assert.equal(await cluster.sha256On(h, dest), big.sha256, `${h.alias}: sha256`)
  const host = r.report!.hosts.find((x) => x.host === cut.alias)!
  assert.ok(host.attempts >= 2, `the cut host was retried (attempts ${host.attempts})`)
  const log = fs.readFileSync(path.join(logs, `${cut.alias}.log`), 'utf8')
  // The first attempt's failure names the cause and the fix, not only that the agent went away.
  assert.match(log, /attempt 1 failed \(agent-exit\): the agent lost its connection before the file was in place: connection to \S+ lost \(no answer to 3 keepalives every 5 s\); check the network path to the host/)
  assert.match(log, new RegExp(`stopping an earlier agent \\(pid ${stale.pid}\\) still running`))
  assert.equal(fs.existsSync(`/proc/${stale.pid}`), false, 'the stale agent is gone')
  const resumed = verifiedAtStart(log).at(-1)!
  assert.ok(resumed >= 20 * MiB, `the last attempt started with the verified pieces: ${verifiedAtStart(log).join(', ')}`)
  // Only what was missing is fetched again (plus a few pieces of slack for requests in flight).
  assert.ok(host.downloaded <= 96 * MiB - resumed + 8 * PIECE, `fetched ${host.downloaded} bytes with ${resumed} already verified`)
  for (const x of r.report!.hosts.filter((x) => x.host !== cut.alias)) assert.equal(x.attempts, 1, `${x.host} was run again`)
  for (const h of cluster.hosts) {
    assert.deepEqual(leftovers(cluster, h, dest), [])
    assertWorkDirClean(h)
  }
  await assertNothingLeftRunning()
})

test('the agent killed by SIGKILL mid-transfer: retried, resumes from its verified pieces', { skip, timeout: 120_000 }, async () => {
  const victim = cluster.hosts[2]!
  const dest = '/srv/sigkill.bin'
  const logs = path.join(work, 'logs-kill')
  const run = startHerd([big.path, dest, '--hostlist', aliases(cluster.hosts), '--retry', '3', '--log-dir', logs])
  await waitUntil(`${victim.alias} to hold a quarter of the file`, () => partialBytes(victim, dest) >= 24 * MiB, 60_000)
  const agents = (await cluster.strayProcesses(victim)).filter((p) => /^herd-agent\b/.test(p.cmdline))
  assert.equal(agents.length, 1, `one agent on ${victim.alias}: ${JSON.stringify(agents)}`)
  process.kill(agents[0]!.pid, 'SIGKILL')
  const r = await run.done
  assert.equal(r.code, 0, r.stderr)
  for (const h of cluster.hosts) assert.equal(await cluster.sha256On(h, dest), big.sha256, `${h.alias}: sha256`)
  const host = r.report!.hosts.find((x) => x.host === victim.alias)!
  assert.equal(host.attempts, 2)
  const log = fs.readFileSync(path.join(logs, `${victim.alias}.log`), 'utf8')
  assert.match(log, /attempt 1 failed \(agent-exit\): the agent was killed by (SIG)?KILL before the file was in place/)
  const resumed = verifiedAtStart(log).at(-1)!
  assert.ok(resumed >= 20 * MiB, `the second attempt started with the verified pieces: ${verifiedAtStart(log).join(', ')}`)
  assert.ok(host.downloaded <= 96 * MiB - resumed + 8 * PIECE, `fetched ${host.downloaded} bytes with ${resumed} already verified`)
  for (const h of cluster.hosts) {
    assert.deepEqual(leftovers(cluster, h, dest), [])
    assertWorkDirClean(h)
  }
  await assertNothingLeftRunning()
})

/** Mounts a tmpfs of `mib` MiB at /srv/small where the host's sshd (and so herd) sees it, with a previous file in it. */
async function smallDisk(h: ClusterHost, mib: number): Promise<string> {
  const r = await inSshdMounts(h, `set -e; mkdir -p /srv/small; mount -t tmpfs -o size=${mib}m herd-test-small /srv/small; head -c 1048576 /dev/urandom > /srv/small/model.bin; sha256sum /srv/small/model.bin`)
  assert.equal(r.code, 0, r.stderr)
  return r.stdout.split(' ')[0]!
}

async function smallDiskState(h: ClusterHost): Promise<{ previous: string; names: string[] }> {
  const r = await inSshdMounts(h, 'sha256sum /srv/small/model.bin | cut -d" " -f1; ls -A /srv/small')
  assert.equal(r.code, 0, r.stderr)
  const [previous, ...names] = r.stdout.trim().split('\n')
  return { previous: previous!, names }
}

test('a destination filesystem too small for the file: a clear "no space" failure before any byte moves, the previous file intact', { skip, timeout: 120_000 }, async () => {
  const full = cluster.hosts[3]!
  for (const h of cluster.hosts) fs.mkdirSync(cluster.hostPath(h, '/srv/small'), { recursive: true })
  const previous = await smallDisk(full, 16)
  try {
    const r = await herd(cluster, [big.path, '/srv/small/model.bin', '--hostlist', aliases(cluster.hosts), '--retry', '2'])
    assert.equal(r.code, 1, r.stderr)
    assert.deepEqual(r.report!.failed, [full.alias])
    const host = r.report!.hosts.find((x) => x.host === full.alias)!
    assert.equal(host.kind, 'no-space')
    assert.match(host.cause!, /^no space left for \/srv\/small\/model\.bin: \d+ more bytes needed in \/srv\/small, \d+ free; free space on that filesystem or choose another destination$/)
    assert.equal(host.attempts, 1, 'no space is not retried')
    assert.match(r.stdout + r.stderr, new RegExp(`FAILED ${full.alias}: no space left`))
    const state = await smallDiskState(full)
    assert.equal(state.previous, previous, 'the previous file is intact')
    assert.deepEqual(state.names, ['model.bin'], 'nothing else in the folder')
    for (const h of cluster.hosts.filter((x) => x !== full)) assert.equal(await cluster.sha256On(h, '/srv/small/model.bin'), big.sha256)
    await assertNothingLeftRunning()
  } finally {
    await inSshdMounts(full, 'umount /srv/small')
  }
})

test('a destination filesystem that fills up mid-transfer: "no space", no partial file, the previous file intact, the temporary file removed', { skip, timeout: 120_000 }, async () => {
  const full = cluster.hosts[3]!
  const dest = '/srv/small/model.bin'
  // Room for the file at the start; then something else on the host takes the space.
  const previous = await smallDisk(full, 100)
  try {
    const run = startHerd([big.path, dest, '--hostlist', aliases(cluster.hosts), '--retry', '2'])
    const partialOnSmall = async () => {
      const r = await inSshdMounts(full, 'for f in /srv/small/.model.bin.herd-*.part; do [ -f "$f" ] && du -k "$f" | cut -f1; done; true', 5000)
      return Number(r.stdout.trim() || 0) * 1024
    }
    await waitUntil('the transfer to be under way on the small disk', async () => (await partialOnSmall()) >= 8 * MiB, 60_000)
    const fill = await inSshdMounts(full, 'dd if=/dev/zero of=/srv/small/neighbour bs=1M 2>&1; df -k /srv/small | tail -1')
    assert.match(fill.stdout, /No space left on device/, 'the neighbour filled the disk')
    const r = await run.done
    assert.equal(r.code, 1, r.stderr)
    assert.deepEqual(r.report!.failed, [full.alias])
    const host = r.report!.hosts.find((x) => x.host === full.alias)!
    assert.equal(host.kind, 'no-space')
    assert.match(host.cause!, /^no space left for .*\.part \(ENOSPC\); free space on that filesystem or choose another destination$/)
    assert.equal(host.attempts, 1)
    const state = await smallDiskState(full)
    assert.equal(state.previous, previous, 'the previous file is intact')
    assert.deepEqual(state.names.sort(), ['model.bin', 'neighbour'], 'the temporary file was removed')
    for (const h of cluster.hosts.filter((x) => x !== full)) assert.equal(await cluster.sha256On(h, dest), big.sha256)
    await assertNothingLeftRunning()
  } finally {
    await inSshdMounts(full, 'umount /srv/small')
  }
})

test('a destination folder that is missing, read-only or not writable: a clear failure per host; herd creates no folders', { skip, timeout: 120_000 }, async () => {
  const [ok, missing, readOnly, immutable] = cluster.hosts as [ClusterHost, ClusterHost, ClusterHost, ClusterHost]
  const dest = '/srv/target/app.bin'
  for (const h of [ok, readOnly, immutable]) fs.mkdirSync(cluster.hostPath(h, '/srv/target'), { recursive: true })
  const ro = await inSshdMounts(readOnly, 'mount --bind /srv/target /srv/target && mount -o remount,bind,ro /srv/target')
  assert.equal(ro.code, 0, ro.stderr)
  const imm = await cluster.shOn(immutable, 'chattr +i /srv/target')
  assert.equal(imm.code, 0, imm.stderr)
  try {
    const r = await herd(cluster, [big.path, dest, '--hostlist', aliases(cluster.hosts), '--retry', '2'])
    assert.equal(r.code, 1, r.stderr)
    const byHost = new Map(r.report!.hosts.map((x) => [x.host, x]))
    assert.equal(byHost.get(ok.alias)!.status, 'ok')
    assert.equal(await cluster.sha256On(ok, dest), big.sha256)
    const expect: [ClusterHost, string, RegExp][] = [
      [missing, 'no-folder', /^folder \/srv\/target does not exist \(ENOENT\); create the folder first \(herd does not create folders\)$/],
      [readOnly, 'read-only-fs', /^folder \/srv\/target is on a read-only filesystem \(EROFS\); choose another destination$/],
      [immutable, 'not-writable', /^folder \/srv\/target is not writable by this user \((EPERM|EACCES)\); fix its permissions or connect as a user who may write it$/],
    ]
    for (const [h, kind, cause] of expect) {
      const x = byHost.get(h.alias)!
      assert.equal(x.kind, kind, `${h.alias}: ${x.cause}`)
      assert.match(x.cause!, cause)
      assert.equal(x.attempts, 1, `${h.alias}: not retried`)
    }
    assert.equal(fs.existsSync(cluster.hostPath(missing, '/srv/target')), false, 'herd created the missing folder')
    for (const h of cluster.hosts) assert.deepEqual(leftovers(cluster, h, dest), [])
    await assertNothingLeftRunning()
  } finally {
    await cluster.shOn(immutable, 'chattr -i /srv/target')
    await inSshdMounts(readOnly, 'umount /srv/target')
  }
})

test('a peer serving corrupt pieces is dropped; the download completes from the others', { skip, timeout: 120_000 }, async () => {
  const [good1, good2, evil] = cluster.hosts as [ClusterHost, ClusterHost, ClusterHost]
  const dest = '/srv/corrupt-peer.bin'
  const file = randomFile(work, 'corrupt-peer.bin', 32 * MiB)
  const peerScript = path.join(repoRoot, 'build', 'test', 'support', 'corrupt-peer.js')
  // --node names a wrapper in each host's private /root: a plain node on the good hosts; on the bad one the
  // agent is replaced by a peer that joins the run's swarm and serves random bytes for every piece.
  const plain = `#!/bin/sh\nexec ${process.execPath} "$@"\n`
  const corrupt = nodeWrapper(`exec ${process.execPath} ${peerScript}`)
  for (const h of [good1, good2]) fs.writeFileSync(cluster.hostPath(h, '/root/node-for-test'), plain, { mode: 0o755 })
  fs.writeFileSync(cluster.hostPath(evil, '/root/node-for-test'), corrupt, { mode: 0o755 })
  fs.rmSync(cluster.hostPath(evil, '/root/corrupt-peer.stop'), { force: true })
  const logs = path.join(work, 'logs-corrupt')
  const run = startHerd([file.path, dest, '--hostlist', aliases([good1, good2, evil]), '--node', '/root/node-for-test', '--log-dir', logs])
  try {
    await waitUntil('the good hosts to have the file', async () => (await cluster.sha256On(good1, dest)) === file.sha256 && (await cluster.sha256On(good2, dest)) === file.sha256, 90_000)
  } finally {
    fs.writeFileSync(cluster.hostPath(evil, '/root/corrupt-peer.stop'), '')
  }
  const r = await run.done
  assert.equal(r.code, 1, r.stderr)
  assert.deepEqual(r.report!.failed, [evil.alias])
  const logsText = [good1, good2].map((h) => fs.readFileSync(path.join(logs, `${h.alias}.log`), 'utf8'))
  const dropped = logsText.map((t) => [...t.matchAll(/dropped peer (\S+): (\d+) pieces from it failed verification/g)].map((m) => m[1]!.replace(/^::ffff:/, '')))
  assert.ok(dropped.some((d) => d.includes(evil.address)), `the corrupt peer ${evil.address} was dropped: ${JSON.stringify(dropped)}`)
  for (const d of dropped) assert.deepEqual(d.filter((a) => a !== evil.address), [], 'only the corrupt peer was dropped')
  assert.match(fs.readFileSync(path.join(logs, `${evil.alias}.log`), 'utf8'), /corrupt peer: stopped after uploading [1-9]\d* bytes/, 'the corrupt peer did serve pieces')
  for (const h of [good1, good2]) {
    assert.equal(await cluster.sha256On(h, dest), file.sha256)
    assert.deepEqual(leftovers(cluster, h, dest), [])
  }
  await assertNothingLeftRunning()
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`the runner interrupted by ${signal} mid-transfer: every agent exits, temporary files are removed, exit ${signal === 'SIGINT' ? 130 : 143}`, { skip, timeout: 120_000 }, async () => {
    const dest = `/srv/interrupted-${signal}.bin`
    const run = startHerd([big.path, dest, '--hostlist', aliases(cluster.hosts), '--retry', '3'])
    await waitUntil('every host to be fetching', () => cluster.hosts.every((h) => partialBytes(h, dest) >= 4 * MiB), 60_000)
    process.kill(run.pid, signal)
    const r = await run.done
    assert.equal(r.code, signal === 'SIGINT' ? 130 : 143, r.stderr)
    assert.match(r.stderr, new RegExp(`herd: ${signal}: stopping every agent and removing temporary files`))
    assert.equal(r.report!.interrupted, signal)
    for (const x of r.report!.hosts) {
      assert.equal(x.status, 'interrupted', `${x.host}: ${x.status} ${x.cause}`)
      assert.equal(x.attempts, 1, 'an interrupted host is not retried')
    }
    for (const h of cluster.hosts) {
      assert.deepEqual(leftovers(cluster, h, dest), [], `${h.alias}: temporary file left`)
      assert.equal(fs.existsSync(cluster.hostPath(h, dest)), false)
      assertWorkDirClean(h)
    }
    await assertNothingLeftRunning()
  })
}

test('--timeout reached: the hosts still running are reported timed out, nothing is left behind, exit 1', { skip, timeout: 120_000 }, async () => {
  const dest = '/srv/timeout.bin'
  const began = Date.now()
  const r = await herd(cluster, [big.path, dest, '--hostlist', aliases(cluster.hosts), '--timeout', '4', '--retry', '-1'])
  assert.ok(Date.now() - began < 30_000, `herd took ${Date.now() - began} ms`)
  assert.equal(r.code, 1, r.stderr)
  assert.equal(r.report!.interrupted, 'timeout')
  for (const x of r.report!.hosts) {
    assert.equal(x.status, 'timed-out', `${x.host}: ${x.status}`)
    assert.match(x.cause!, /the time limit \(--timeout\) ended before this host finished/)
  }
  for (const h of cluster.hosts) {
    assert.deepEqual(leftovers(cluster, h, dest), [], `${h.alias}: temporary file left`)
    assert.equal(fs.existsSync(cluster.hostPath(h, dest)), false)
    assertWorkDirClean(h)
  }
  await assertNothingLeftRunning()
})

test('finished hosts are let go while a dead host is still retried (--retry -1): their agents exit long before the run ends', { skip, timeout: 120_000 }, async () => {
  const dead = cluster.hosts[3]!
  const alive = cluster.hosts.slice(0, 3)
  const dest = '/srv/early-release.bin'
  await cluster.stopSshd(dead)
  try {
    const run = startHerd([big.path, dest, '--hostlist', aliases(cluster.hosts), '--retry', '-1', '--timeout', '90'])
    await waitUntil('the live hosts to hold the file', async () => (await Promise.all(alive.map((h) => cluster.sha256On(h, dest)))).every((s) => s === big.sha256), 60_000)
    // Their agents are released while herd still retries the dead host: nothing of herd's runs on them.
    await assertNothingLeftRunning(alive)
    assert.equal(run.pid > 0 && (await Promise.race([run.done.then(() => 'ended'), new Promise((r) => setTimeout(() => r('running'), 100))])), 'running', 'herd is still retrying the dead host')
    process.kill(-run.pid, 'SIGINT')
    const r = await run.done
    assert.equal(r.code, 130, r.stderr)
    assert.deepEqual(r.report!.succeeded, alive.map((h) => h.alias))
  } finally {
    await cluster.startSshd(dead)
  }
  await assertNothingLeftRunning()
})
