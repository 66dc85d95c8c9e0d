// Logins other than root on real sshd hosts: herd works as that user, in its home, whatever its login shell.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { clusterForFile, type TestFile } from './support/fixture.js'
import type { Cluster, ClusterHost } from './support/cluster.js'
import { herd, leftovers, nodeWrapper } from './support/herd.js'

const tcsh = spawnSync('sh', ['-c', 'command -v tcsh'], { encoding: 'utf8' }).stdout.trim()
const MiB = 1024 * 1024
let cluster: Cluster
let work: string
let file: TestFile

const skip = clusterForFile({ hosts: 2, prefix: 'herd-logins-', file: { name: 'app.bin', bytes: 8 * MiB } }, (fx) => ({ cluster, work, file } = fx))

test('a non-root login on every host (--user beats the ssh config\'s User): its own home, working folder and file, the hosts trading pieces as that user', { skip, timeout: 120_000 }, async () => {
  const uid = 4244
  const homes: string[] = []
  for (const h of cluster.hosts) homes.push((await cluster.addLogin(h, { name: 'deploy', uid, shell: '/bin/sh' })).home)
  const home = homes[0]!
  const dest = `${home}/app.bin`
  const logs = path.join(work, 'logs-deploy')
  // One host by its alias alone: --user beats the ssh config's `User root` for it, as ssh -l does.
  const [first, second] = cluster.hosts as [ClusterHost, ClusterHost]
  const labels = new Map([[first, first.alias], [second, `deploy@${second.alias}`]])
  const r = await herd(cluster, [file.path, dest, '--hostlist', [...labels.values()].join(','), '--user', 'deploy', '--log-dir', logs])
  assert.equal(r.code, 0, r.stderr)
  for (const h of cluster.hosts) {
    assert.equal(await cluster.sha256On(h, dest), file.sha256, `${h.alias}: sha256`)
    const st = fs.statSync(cluster.hostPath(h, dest))
    assert.deepEqual([st.uid, st.mode & 0o777], [uid, fs.statSync(file.path).mode & 0o777], `${h.alias}: the login owns the file, with the local file's mode`)
    const wd = fs.statSync(cluster.hostPath(h, `${home}/.cache/herd-action`))
    assert.deepEqual([wd.uid, wd.mode & 0o777], [uid, 0o700], `${h.alias}: the working folder is the login's, 0700`)
    assert.equal(fs.existsSync(cluster.hostPath(h, '/root/.cache/herd-action')), false, `${h.alias}: nothing in root's home`)
    assert.match(fs.readFileSync(path.join(logs, `${labels.get(h)}.log`), 'utf8'), /authenticated as deploy /)
    assert.deepEqual(leftovers(cluster, h, dest), [])
  }
  // The agents, running as the login, served each other too.
  const fromPeers = r.report!.hosts.reduce((sum, h) => sum + h.downloaded - h.fromRunner, 0)
  assert.ok(fromPeers > 0, `the hosts traded no piece: ${JSON.stringify(r.report!.hosts)}`)
  for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], h.alias)
})

test('a login whose shell is tcsh (which expands `!` even in single quotes) gets the file: every remote command runs under it', { skip: skip || (tcsh ? false : 'tcsh not found (scripts/setup.sh installs it)'), timeout: 120_000 }, async () => {
  const h = cluster.hosts[0]!
  const uid = 4243
  const { home } = await cluster.addLogin(h, { name: 'herdcsh', uid, shell: tcsh })
  const probe = await cluster.runInRunner(cluster.sshArgv(h, 'echo $shell', ['-l', 'herdcsh']))
  assert.equal(probe.stdout.trim(), tcsh, `the login's shell runs its commands: ${probe.stderr}`)
  const dest = `${home}/app.bin`
  const logs = path.join(work, 'logs-tcsh')
  const r = await herd(cluster, [file.path, dest, '--hostlist', `herdcsh@${h.alias}`, '--log-dir', logs])
  assert.equal(r.code, 0, `${r.stderr}\n${fs.readFileSync(path.join(logs, `herdcsh@${h.alias}.log`), 'utf8')}`)
  assert.equal(await cluster.sha256On(h, dest), file.sha256)
  assert.equal(fs.statSync(cluster.hostPath(h, dest)).uid, uid, 'the file belongs to the login')
  assert.equal(fs.statSync(cluster.hostPath(h, `${home}/.cache/herd-action`)).uid, uid, 'the working folder is in its home')
  assert.deepEqual(leftovers(cluster, h, dest), [])
  assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [])
})

test('output that never ends a line where the agent should speak (a start-up file gone wrong) fails that host at 1 MiB, with the cause; the other gets the file', { skip, timeout: 120_000 }, async () => {
  const [noisy, quiet] = cluster.hosts as [ClusterHost, ClusterHost]
  fs.writeFileSync(cluster.hostPath(noisy, '/root/node-for-test'), nodeWrapper("head -c 3000000 /dev/zero | tr '\\0' x"), { mode: 0o755 })
  fs.writeFileSync(cluster.hostPath(quiet, '/root/node-for-test'), nodeWrapper('true'), { mode: 0o755 })
  const dest = '/srv/noisy.bin'
  const r = await herd(cluster, [file.path, dest, '--hostlist', `${noisy.alias},${quiet.alias}`, '--node', '/root/node-for-test', '--retry', '2'])
  assert.equal(r.code, 1, r.stderr)
  const failed = r.report!.hosts.find((h) => h.host === noisy.alias)!
  assert.equal(failed.kind, 'protocol', failed.cause)
  assert.match(failed.cause!, /the agent's output ran \d+ bytes without a line end \(at most 1 MiB\): that is not herd's protocol/)
  assert.equal(failed.attempts, 1, 'not retried: it would print the same again')
  assert.equal(await cluster.sha256On(quiet, dest), file.sha256)
  assert.deepEqual(leftovers(cluster, noisy, dest), [], 'the agent was stopped and removed its temporary file')
  for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], h.alias)
})
