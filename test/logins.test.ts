// Logins other than root on real sshd hosts: herd works as that user, in its home, whatever its login shell.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { openClusterFixture, type ClusterFixture, type TestFile } from './support/fixture.js'
import { canRunCluster, type Cluster } from './support/cluster.js'
import { herd, leftovers } from './support/herd.js'

const can = canRunCluster()
const skip = can.ok ? false : can.why
const tcsh = spawnSync('sh', ['-c', 'command -v tcsh'], { encoding: 'utf8' }).stdout.trim()
const MiB = 1024 * 1024
let fx: ClusterFixture | undefined
let cluster: Cluster
let work: string
let file: TestFile

before(async () => {
  if (!can.ok) return
  fx = await openClusterFixture({ hosts: 2, prefix: 'herd-logins-', file: { name: 'app.bin', bytes: 8 * MiB } })
  ;({ cluster, work, file } = fx)
})

after(() => fx?.close())

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
