// OpenSSH's own behaviour on real sshd hosts: keys the user named first, host-key policy the user chose.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { openClusterFixture, type ClusterFixture, type TestFile } from './support/fixture.js'
import { canRunCluster, type Cluster, type ClusterHost } from './support/cluster.js'
import { herd, hostsFile, waitUntil } from './support/herd.js'

const can = canRunCluster()
const skip = can.ok ? false : can.why
const MiB = 1024 * 1024
let fx: ClusterFixture | undefined
let cluster: Cluster
let work: string
let file: TestFile

before(async () => {
  if (!can.ok) return
  fx = await openClusterFixture({ hosts: 3, prefix: 'herd-ssh-hosts-', file: { name: 'app.bin', bytes: 8 * MiB } })
  ;({ cluster, work, file } = fx)
})

after(() => fx?.close())

/** An ssh config for the cluster's hosts by alias, with `extra` lines in each block and no IdentityFile. */
function configWith(name: string, extra: (h: ClusterHost) => string[]): string {
  const config = path.join(work, name)
  const blocks = cluster.hosts.map((h) => [`Host ${h.alias}`, `  HostName ${h.address}`, '  User root', ...extra(h).map((l) => `  ${l}`)].join('\n'))
  fs.writeFileSync(config, blocks.join('\n\n') + '\n', { mode: 0o600 })
  return config
}

async function assertEveryHostHas(destination: string, hosts = cluster.hosts): Promise<void> {
  for (const h of hosts) assert.equal(await cluster.sha256On(h, destination), file.sha256, `${h.alias}: ${destination}`)
}

test('an ssh-agent holding 6 other keys and -i the right one: the named key is offered first, every host gets the file', { skip, timeout: 120_000 }, async () => {
  const socket = path.join(work, 'agent.sock')
  const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' })
  try {
    await waitUntil('the ssh-agent socket', () => fs.existsSync(socket), 10_000)
    for (let k = 0; k < 6; k++) {
      const key = path.join(work, `other-${k}`)
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
      execFileSync('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' })
    }
    const config = configWith('agent-config', () => [`UserKnownHostsFile ${cluster.knownHostsPath}`])
    const r = await herd(cluster, [file.path, '/srv/agent.bin', hostsFile(work, cluster.hosts), '--ssh-config', config, '-i', cluster.identityPath], { env: { SSH_AUTH_SOCK: socket } })
    assert.equal(r.code, 0, r.stderr)
    await assertEveryHostHas('/srv/agent.bin')
  } finally {
    agent.kill()
  }
})

test('StrictHostKeyChecking no in ~/.ssh/config does not beat --known-hosts: a wrong key there fails that host as changed', { skip, timeout: 120_000 }, async () => {
  const [wrong, ...right] = cluster.hosts as [ClusterHost, ...ClusterHost[]]
  const otherKey = path.join(work, 'not-the-host-key')
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey])
  const otherPub = fs.readFileSync(`${otherKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')
  const known = path.join(work, 'given_known_hosts')
  fs.writeFileSync(known, cluster.hosts.map((h) => `${h.address} ${h === wrong ? otherPub : h.hostKeyPub}`).join('\n') + '\n')
  const config = configWith('lax-config', () => ['StrictHostKeyChecking no', `IdentityFile ${cluster.identityPath}`])
  const r = await herd(cluster, [file.path, '/srv/policy.bin', hostsFile(work, cluster.hosts), '--ssh-config', config, '--known-hosts', known])
  assert.equal(r.code, 1, r.stderr)
  assert.deepEqual(r.report!.failed, [wrong.alias])
  const failed = r.report!.hosts.find((h) => h.host === wrong.alias)!
  assert.equal(failed.kind, 'host-key-changed', failed.cause)
  assert.match(failed.cause!, /HOST KEY CHANGED/)
  await assertEveryHostHas('/srv/policy.bin', right)
  assert.equal(await cluster.sha256On(wrong, '/srv/policy.bin'), null)
})
