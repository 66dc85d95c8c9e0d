// OpenSSH's own behaviour on real sshd hosts: keys the user named first, host-key policy the user chose.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { clusterForFile, type TestFile } from './support/fixture.js'
import type { Cluster, ClusterHost } from './support/cluster.js'
import { herd, hostsFile, waitUntil } from './support/herd.js'

const MiB = 1024 * 1024
let cluster: Cluster
let work: string
let file: TestFile

const skip = clusterForFile({ hosts: 3, prefix: 'herd-ssh-hosts-', file: { name: 'app.bin', bytes: 8 * MiB } }, (fx) => ({ cluster, work, file } = fx))

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

test("--ssh openssh: every host through the system's ssh (ControlMaster), the runner's services forwarded by it too", { skip, timeout: 120_000 }, async () => {
  const config = configWith('openssh-config', () => [`IdentityFile ${cluster.identityPath}`, `UserKnownHostsFile ${cluster.knownHostsPath}`])
  const logs = path.join(work, 'logs-openssh')
  const r = await herd(cluster, [file.path, '/srv/openssh.bin', hostsFile(work, cluster.hosts), '--ssh-config', config, '--ssh', 'openssh', '--runner-via', 'ssh', '--log-dir', logs])
  assert.equal(r.code, 0, r.stderr)
  await assertEveryHostHas('/srv/openssh.bin')
  for (const h of cluster.hosts) {
    const log = fs.readFileSync(path.join(logs, `${h.alias}.log`), 'utf8')
    assert.match(log, /using OpenSSH's ssh for this host \(--ssh openssh\)/)
    assert.match(log, /agent ready .*; runner reached through SSH/)
  }
  for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
})

test('a host that takes only a user certificate and one known only by its host certificate: --ssh auto picks OpenSSH for them, strict checking on', { skip, timeout: 180_000 }, async () => {
  const [userCertHost, hostCertHost, plain] = cluster.hosts as [ClusterHost, ClusterHost, ClusterHost]
  const keygen = (...args: string[]) => execFileSync('ssh-keygen', ['-q', ...args], { stdio: 'ignore' })
  const userCa = path.join(work, 'user_ca')
  const hostCa = path.join(work, 'host_ca')
  const userKey = path.join(work, 'cert_user')
  keygen('-t', 'ed25519', '-N', '', '-f', userCa)
  keygen('-t', 'ed25519', '-N', '', '-f', hostCa)
  keygen('-t', 'ed25519', '-N', '', '-f', userKey)
  keygen('-s', userCa, '-I', 'herd-test-user', '-n', 'root', '-V', '+1h', `${userKey}.pub`)
  const hostPub = path.join(hostCertHost.dir, 'ssh_host_ed25519_key.pub')
  keygen('-s', hostCa, '-I', 'herd-test-host', '-h', '-n', hostCertHost.address, '-V', '+1h', hostPub)
  // In the host's own folder: its sshd sees a private /tmp, not this test's.
  const trusted = path.join(userCertHost.dir, 'user_ca.pub')
  fs.copyFileSync(`${userCa}.pub`, trusted)
  await cluster.configureSshd(userCertHost, [`TrustedUserCAKeys ${trusted}`, 'AuthorizedKeysFile none'])
  await cluster.configureSshd(hostCertHost, [`HostCertificate ${path.join(hostCertHost.dir, 'ssh_host_ed25519_key-cert.pub')}`])
  const caKnownHosts = path.join(work, 'known_hosts_ca')
  fs.writeFileSync(caKnownHosts, `@cert-authority ${hostCertHost.address} ${fs.readFileSync(`${hostCa}.pub`, 'utf8').trim()}\n`)
  const config = configWith('cert-config', (h) =>
    h === userCertHost
      ? [`IdentityFile ${userKey}`, `CertificateFile ${userKey}-cert.pub`, `UserKnownHostsFile ${cluster.knownHostsPath}`]
      : h === hostCertHost
        ? [`IdentityFile ${cluster.identityPath}`, `UserKnownHostsFile ${caKnownHosts}`]
        : [`IdentityFile ${cluster.identityPath}`, `UserKnownHostsFile ${cluster.knownHostsPath}`],
  )
  try {
    const logs = path.join(work, 'logs-certs')
    const r = await herd(cluster, [file.path, '/srv/certs.bin', hostsFile(work, cluster.hosts), '--ssh-config', config, '--log-dir', logs])
    assert.equal(r.code, 0, r.stderr)
    await assertEveryHostHas('/srv/certs.bin')
    const log = (h: ClusterHost) => fs.readFileSync(path.join(logs, `${h.alias}.log`), 'utf8')
    assert.match(log(userCertHost), /using OpenSSH's ssh for this host \(the ssh config has certificatefile, which only OpenSSH does\)/)
    assert.match(log(hostCertHost), /using OpenSSH's ssh for this host \(known_hosts vouches for it with @cert-authority only/)
    assert.doesNotMatch(log(plain), /OpenSSH's ssh/)
  } finally {
    await cluster.configureSshd(userCertHost, [])
    await cluster.configureSshd(hostCertHost, [])
  }
})
