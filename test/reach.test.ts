// Hosts that can't dial the runner: its services through each host's SSH connection, bastions, ProxyCommand, stalls.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { clusterForFile, openClusterFixture, type TestFile } from './support/fixture.js'
import { canRunCluster, type Cluster, type ClusterHost } from './support/cluster.js'
import { herd, hostsFile } from './support/herd.js'

const cluster0 = canRunCluster()
const hasNft = spawnSync('sh', ['-c', 'command -v nft || test -x /usr/sbin/nft'], { timeout: 5000 }).status === 0
const can = cluster0.ok && !hasNft ? { ok: false, why: 'nft not found (bash scripts/setup.sh installs nftables)' } : cluster0
const MiB = 1024 * 1024
let cluster: Cluster
let work: string
let file: TestFile

const skip = clusterForFile({ hosts: 8, rateMbit: 100, prefix: 'herd-reach-', file: { name: 'build.bin', bytes: 96 * MiB } }, (fx) => ({ cluster, work, file } = fx), can)

/** Every new connection into the runner is dropped (replies to its own connections still come in). */
const RUNNER_BEHIND_FIREWALL = `table inet herdtest {
  chain input {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    iifname "lo" accept
    ct state new drop
  }
}`

async function assertEveryHostHas(hosts: ClusterHost[], destination: string): Promise<void> {
  for (const h of hosts) assert.equal(await cluster.sha256On(h, destination), file.sha256, `${h.alias}: sha256 of ${destination}`)
}

async function assertNothingLeftRunning(): Promise<void> {
  for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
}

test('a runner that drops every inbound connection still pushes to 8 hosts through their SSH connections, in at most 1.5x the time', { skip, timeout: 240_000 }, async (t) => {
  const hosts = hostsFile(work, cluster.hosts)
  const open = await herd(cluster, [file.path, '/srv/open.bin', hosts])
  assert.equal(open.code, 0, open.stderr)
  for (const h of open.report!.hosts) assert.equal(h.runnerVia, 'direct', `${h.host} without a firewall`)

  await cluster.firewall(cluster.runnerNetns, RUNNER_BEHIND_FIREWALL)
  try {
    const logs = path.join(work, 'logs-firewall')
    const closed = await herd(cluster, [file.path, '/srv/closed.bin', hosts, '--log-dir', logs])
    assert.equal(closed.code, 0, closed.stderr)
    const report = closed.report!
    for (const h of report.hosts) assert.equal(h.runnerVia, 'ssh', `${h.host} behind the firewall`)
    await assertEveryHostHas(cluster.hosts, '/srv/closed.bin')
    const copies = report.bytesFromRunner / report.size
    assert.ok(copies <= 1.5, `the runner uploaded ${copies.toFixed(2)} copies through the tunnels; the hosts should trade the rest`)
    const ratio = report.seconds / open.report!.seconds
    t.diagnostic(`without the firewall ${open.report!.seconds.toFixed(1)} s, behind it ${report.seconds.toFixed(1)} s (${ratio.toFixed(2)}x); runner uploaded ${copies.toFixed(2)} copies`)
    assert.ok(ratio <= 1.5, `behind the firewall ${report.seconds.toFixed(1)} s, without ${open.report!.seconds.toFixed(1)} s: ${ratio.toFixed(2)}x`)
    const log = fs.readFileSync(path.join(logs, `${cluster.hosts[0]!.alias}.log`), 'utf8')
    assert.match(log, /runner reached through SSH/)
    assert.match(closed.stderr + closed.stdout, /8 reached the runner through SSH|"runnerVia":"ssh"/)
  } finally {
    await cluster.firewall(cluster.runnerNetns, '')
  }
  await assertNothingLeftRunning()
})

test('--runner-via direct behind that firewall fails each host with the cause, within 90 s and without --timeout', { skip, timeout: 180_000 }, async () => {
  const hosts = cluster.hosts.slice(0, 2)
  await cluster.firewall(cluster.runnerNetns, RUNNER_BEHIND_FIREWALL)
  try {
    const began = Date.now()
    const r = await herd(cluster, [file.path, '/srv/direct.bin', hostsFile(work, hosts, 'two.txt'), '--runner-via', 'direct'], { timeoutMs: 120_000 })
    assert.ok(Date.now() - began < 90_000, `took ${(Date.now() - began) / 1000} s`)
    assert.equal(r.code, 1, r.stderr)
    for (const h of r.report!.hosts) {
      assert.equal(h.kind, 'unreachable', `${h.host}: ${h.cause}`)
      assert.match(h.cause!, /cannot reach the runner at \d+\.\d+\.\d+\.\d+:\d+.*open the runner's ports/)
    }
    for (const h of hosts) assert.equal(await cluster.sha256On(h, '/srv/direct.bin'), null)
  } finally {
    await cluster.firewall(cluster.runnerNetns, '')
  }
  await assertNothingLeftRunning()
})

test('a host whose sshd forbids forwarding and that cannot reach the runner fails alone, with the cause, within 90 s', { skip, timeout: 180_000 }, async (t) => {
  const shut = cluster.hosts[7]!
  await cluster.configureSshd(shut, ['AllowTcpForwarding no'])
  // Only this host's packets to the runner are dropped: the others reach it directly.
  await cluster.firewall(cluster.runnerNetns, `table inet herdtest {
  chain input {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    ip saddr ${shut.address} ct state new drop
  }
}`)
  try {
    const began = Date.now()
    const logs = path.join(work, 'logs-shut')
    const r = await herd(cluster, [file.path, '/srv/shut.bin', hostsFile(work, cluster.hosts), '--log-dir', logs], { timeoutMs: 150_000 })
    assert.ok(Date.now() - began < 90_000, `took ${(Date.now() - began) / 1000} s`)
    assert.equal(r.code, 1, r.stderr)
    assert.deepEqual(r.report!.failed, [shut.alias])
    const failed = r.report!.hosts.find((h) => h.host === shut.alias)!
    assert.equal(failed.kind, 'unreachable')
    t.diagnostic(`${shut.alias} failed after ${((Date.now() - began) / 1000).toFixed(1)} s: ${failed.cause}`)
    assert.match(failed.cause!, /cannot reach the runner at .*sshd refused to forward a port.*AllowTcpForwarding/)
    assert.match(r.stderr + r.stdout, new RegExp(`FAILED ${shut.alias}: cannot reach the runner|"failed":\\["${shut.alias}"\\]`))
    await assertEveryHostHas(cluster.hosts.slice(0, 7), '/srv/shut.bin')
    assert.equal(await cluster.sha256On(shut, '/srv/shut.bin'), null)
  } finally {
    await cluster.firewall(cluster.runnerNetns, '')
    await cluster.configureSshd(shut, [])
  }
  await assertNothingLeftRunning()
})

test('a ProxyCommand host gets the file through its SSH connection', { skip, timeout: 120_000 }, async () => {
  const target = cluster.hosts[3]!
  // A ProxyCommand that just joins stdin/stdout to host:port, as `nc %h %p` would.
  const proxy = path.join(work, 'proxy.mjs')
  fs.writeFileSync(proxy, "import net from 'node:net'\nconst s = net.connect(Number(process.argv[3]), process.argv[2])\nprocess.stdin.pipe(s).pipe(process.stdout)\ns.on('close', () => process.exit(0))\n")
  const config = path.join(work, 'proxy-config')
  fs.writeFileSync(config, `${fs.readFileSync(cluster.sshConfigPath, 'utf8')}\nHost proxied\n  HostName ${target.address}\n  User root\n  IdentityFile ${cluster.identityPath}\n  UserKnownHostsFile ${cluster.knownHostsPath}\n  ProxyCommand ${process.execPath} ${proxy} %h %p\n`, { mode: 0o600 })
  const r = await herd(cluster, [file.path, '/srv/proxied.bin', '--hostlist', 'proxied', '--ssh-config', config])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.report!.hosts[0]!.runnerVia, 'ssh')
  assert.equal(await cluster.sha256On(target, '/srv/proxied.bin'), file.sha256)
  await assertNothingLeftRunning()
})

test('hosts behind a bastion get the file over one SSH session from the runner to it', { skip, timeout: 120_000 }, async () => {
  const [bastion, ...behind] = cluster.hosts.slice(0, 6) as [ClusterHost, ...ClusterHost[]]
  const config = path.join(work, 'jump-config')
  fs.writeFileSync(config, `${fs.readFileSync(cluster.sshConfigPath, 'utf8')}\nHost ${behind.map((h) => h.alias).join(' ')}\n  ProxyJump ${bastion.alias}\n`, { mode: 0o600 })
  // The runner can't open SSH to them itself: only the bastion can.
  await cluster.firewall(cluster.runnerNetns, `table inet herdtest {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr { ${behind.map((h) => h.address).join(', ')} } tcp dport 22 drop
  }
}`)
  const sessions = () => (fs.readFileSync(bastion.logPath, 'utf8').match(new RegExp(`Connection from ${cluster.runnerAddress.replace(/\./g, '\\.')} `, 'g')) ?? []).length
  const before = sessions()
  try {
    const r = await herd(cluster, [file.path, '/srv/jumped.bin', hostsFile(work, behind, 'behind.txt'), '--ssh-config', config])
    assert.equal(r.code, 0, r.stderr)
    for (const h of r.report!.hosts) assert.equal(h.runnerVia, 'ssh', h.host)
    await assertEveryHostHas(behind, '/srv/jumped.bin')
    assert.equal(sessions() - before, 1, `the bastion's sshd log shows ${sessions() - before} connections from the runner`)
  } finally {
    await cluster.firewall(cluster.runnerNetns, '')
  }
  await assertNothingLeftRunning()
})

test('a host that can reach no other host, nor they it, gets the file from the runner through SSH, and the report says so', { skip, timeout: 120_000 }, async () => {
  const hosts = cluster.hosts.slice(0, 4)
  const island = hosts[3]!
  // Only SSH in, and nothing out but its replies: the runner is reached through the SSH connection alone.
  await cluster.firewall(island.netns, `table inet herdtest {
  chain input {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    iifname "lo" accept
    tcp dport 22 accept
    ct state new drop
  }
  chain output {
    type filter hook output priority 0; policy accept;
    ct state established,related accept
    oifname "lo" accept
    ct state new drop
  }
}`)
  try {
    const r = await herd(cluster, [file.path, '/srv/island.bin', hostsFile(work, hosts, 'island.txt'), '--log-dir', '/tmp/island-logs'])
    assert.equal(r.code, 0, r.stderr)
    const alone = r.report!.hosts.find((h) => h.host === island.alias)!
    assert.equal(alone.runnerVia, 'ssh')
    assert.equal(alone.fromRunner, alone.downloaded)
    assert.equal(alone.downloaded, r.report!.size)
    assert.match(r.stderr, new RegExp(`${island.alias} got every byte from the runner: it reached no other host`))
    await assertEveryHostHas(hosts, '/srv/island.bin')
  } finally {
    await cluster.firewall(island.netns, '')
  }
  await assertNothingLeftRunning()
})

test('through SSH on slow links that the push saturates, every host gets the file: late keepalive answers and runner messages queued behind the data cut nothing', { skip, timeout: 240_000 }, async (t) => {
  // 4 hosts behind 2 Mbit/s links: each SSH connection carries its host's stripe at about 62 KB/s, so what
  // the runner sends through it (its messages, the keepalives' answers) waits tens of seconds behind the
  // data already queued. Such a connection is alive: the server's packets keep coming.
  const slow = await openClusterFixture({ hosts: 4, rateMbit: 2, prefix: 'herd-reach-slow-', file: { name: 'slow.bin', bytes: 8 * MiB } })
  try {
    const logs = path.join(slow.work, 'logs')
    const r = await herd(slow.cluster, [slow.file.path, '/srv/slow.bin', hostsFile(slow.work, slow.cluster.hosts), '--runner-via', 'ssh', '--log-dir', logs], { timeoutMs: 180_000 })
    assert.equal(r.code, 0, r.stderr)
    for (const h of r.report!.hosts) assert.equal(h.runnerVia, 'ssh', h.host)
    for (const h of slow.cluster.hosts) assert.equal(await slow.cluster.sha256On(h, '/srv/slow.bin'), slow.file.sha256, h.alias)
    const bound = (8 * MiB * 8) / 2e6
    t.diagnostic(`${r.report!.seconds.toFixed(1)} s for 8 MiB through SSH (one copy over the runner's link: ${bound.toFixed(1)} s)`)
    for (const h of slow.cluster.hosts) assert.deepEqual(await slow.cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
  } finally {
    await slow.close()
  }
})

test('an IPv6-only cluster gets the file, the runner sending at most 1.5 copies', { skip, timeout: 180_000 }, async () => {
  const v6 = await openClusterFixture({ hosts: 4, rateMbit: 100, ipv6: true, prefix: 'herd-reach6-', file: { name: 'v6.bin', bytes: 48 * MiB } })
  try {
    assert.match(v6.cluster.runnerAddress, /^fd00:/)
    const r = await herd(v6.cluster, [v6.file.path, '/srv/v6.bin', hostsFile(v6.work, v6.cluster.hosts)])
    assert.equal(r.code, 0, r.stderr)
    for (const h of v6.cluster.hosts) assert.equal(await v6.cluster.sha256On(h, '/srv/v6.bin'), v6.file.sha256, h.alias)
    for (const h of r.report!.hosts) assert.equal(h.runnerVia, 'direct', h.host)
    const copies = r.report!.bytesFromRunner / r.report!.size
    assert.ok(copies <= 1.5, `the runner sent ${copies.toFixed(2)} copies: the hosts did not trade over IPv6`)
    for (const h of v6.cluster.hosts) assert.deepEqual(await v6.cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
  } finally {
    await v6.close()
  }
})

test('a host that receives nothing fails after --stall-timeout with what it had and how it reached the runner, and is retried', { skip, timeout: 120_000 }, async () => {
  const starved = cluster.hosts[5]!
  // Connections to the runner's seeder open (so the agent picks that way), but no byte of data comes back.
  await cluster.firewall(starved.netns, `table inet herdtest {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp sport 18999 meta length > 120 drop
  }
}`)
  try {
    const began = Date.now()
    const r = await herd(cluster, [file.path, '/srv/starved.bin', '--hostlist', starved.alias, '--port', '18998', '--runner-via', 'direct', '--stall-timeout', '5', '--retry', '1'], { timeoutMs: 90_000 })
    assert.equal(r.code, 1, r.stderr)
    const h = r.report!.hosts[0]!
    assert.equal(h.kind, 'stalled', h.cause)
    assert.equal(h.attempts, 2)
    assert.match(h.cause!, /^no data arrived for 5 s \(0 of \d+ bytes verified, 0 peers, the runner reached directly at [\d.]+:18999\); check .*raise --stall-timeout/)
    assert.ok(Date.now() - began < 60_000, `took ${(Date.now() - began) / 1000} s`)
    assert.equal(await cluster.sha256On(starved, '/srv/starved.bin'), null)
  } finally {
    await cluster.firewall(starved.netns, '')
  }
  await assertNothingLeftRunning()
})
