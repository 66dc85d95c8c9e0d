// Security on real sshd hosts: host keys, quoting, the remote working folder, the agent's hash check,
// the private tracker, and secrets kept out of logs and reports.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import crypto from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { clusterForFile, type TestFile } from './support/fixture.js'
import type { Cluster, ClusterHost } from './support/cluster.js'
import { herd, leftovers, nodeWrapper, waitUntil } from './support/herd.js'
import { startTracker } from '../src/core/swarm/tracker.js'
import { loadAgentBundle } from '../src/core/agent-bundle.js'

const MiB = 1024 * 1024
let cluster: Cluster
let work: string
let file: TestFile

const skip = clusterForFile({ hosts: 3, prefix: 'herd-security-', file: { name: 'secure.bin', bytes: 8 * MiB } }, (fx) => ({ cluster, work, file } = fx))

async function assertNothingLeftRunning(): Promise<void> {
  for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
}

const alias = (h: ClusterHost) => h.alias

/** A known_hosts file (plain, by address) where `override` replaces or drops a host's key. */
function knownHosts(name: string, override: Map<ClusterHost, string | null> = new Map()): string {
  const lines = cluster.hosts
    .map((h) => (override.has(h) ? override.get(h) : h.hostKeyPub))
    .map((key, i) => (key ? `${cluster.hosts[i]!.address} ${key}` : ''))
    .filter(Boolean)
  const file = path.join(work, name)
  fs.writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 })
  return file
}

/** Another ed25519 public key: what a host would offer after a reinstall, or a man in the middle. */
function otherHostKey(): string {
  const keyFile = path.join(work, `other-key-${crypto.randomBytes(4).toString('hex')}`)
  assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]).status, 0)
  const [type, body] = fs.readFileSync(`${keyFile}.pub`, 'utf8').trim().split(/\s+/)
  return `${type} ${body}`
}

test('host keys: unknown and changed keys are refused by default', { skip, timeout: 60_000 }, async () => {
  const [h0, h1] = cluster.hosts as [ClusterHost, ClusterHost]
  const kh = knownHosts('kh-strict', new Map<ClusterHost, string | null>([[h0, null], [h1, otherHostKey()]]))
  const before = fs.readFileSync(kh, 'utf8')
  const r = await herd(cluster, [file.path, '/srv/hk-strict.bin', '--hostlist', cluster.hosts.map(alias).join(','), '--known-hosts', kh])
  assert.equal(r.code, 1, r.stderr)
  const byHost = new Map(r.report!.hosts.map((x) => [x.host, x]))
  assert.equal(byHost.get(h0.alias)!.kind, 'host-key-unknown')
  assert.match(byHost.get(h0.alias)!.cause!, /is not known \(ssh-ed25519 SHA256:.*ssh-keyscan/)
  assert.equal(byHost.get(h1.alias)!.kind, 'host-key-changed')
  assert.match(byHost.get(h1.alias)!.cause!, /HOST KEY CHANGED .*SHA256:.*ssh-keygen -R/)
  assert.equal(byHost.get(cluster.hosts[2]!.alias)!.status, 'ok')
  for (const h of [h0, h1]) {
    assert.equal(await cluster.sha256On(h, '/srv/hk-strict.bin'), null, `${h.alias} got the file`)
    assert.equal(fs.existsSync(cluster.hostPath(h, '/root/.cache/herd-action')), false, `${h.alias}: something was uploaded`)
  }
  assert.equal(fs.readFileSync(kh, 'utf8'), before, 'known_hosts was changed')
  await assertNothingLeftRunning()
})

test('host keys: --accept-new-host-keys adds an unknown key but never accepts a changed one', { skip, timeout: 60_000 }, async () => {
  const [h0, h1] = cluster.hosts as [ClusterHost, ClusterHost]
  const kh = knownHosts('kh-accept-new', new Map<ClusterHost, string | null>([[h0, null], [h1, otherHostKey()]]))
  const before = fs.readFileSync(kh, 'utf8')
  const r = await herd(cluster, [file.path, '/srv/hk-new.bin', '--hostlist', cluster.hosts.map(alias).join(','), '--known-hosts', kh, '--accept-new-host-keys'])
  assert.equal(r.code, 1, r.stderr)
  const byHost = new Map(r.report!.hosts.map((x) => [x.host, x]))
  assert.equal(byHost.get(h0.alias)!.status, 'ok', 'the unknown key was accepted')
  assert.equal(await cluster.sha256On(h0, '/srv/hk-new.bin'), file.sha256)
  assert.equal(byHost.get(h1.alias)!.kind, 'host-key-changed', 'a changed key is never accepted')
  assert.equal(await cluster.sha256On(h1, '/srv/hk-new.bin'), null)
  const after = fs.readFileSync(kh, 'utf8')
  assert.ok(after.startsWith(before), 'existing entries are kept as they were')
  const added = after.slice(before.length).trim().split('\n')
  assert.equal(added.length, 1, `one key added: ${added.join(' | ')}`)
  assert.ok(added[0]!.endsWith(h0.hostKeyPub), `the added line is h0's key: ${added[0]}`)
  // Now known: a strict run accepts h0.
  const again = await herd(cluster, [file.path, '/srv/hk-new2.bin', '--hostlist', h0.alias, '--known-hosts', kh])
  assert.equal(again.code, 0, again.stderr)
  await assertNothingLeftRunning()
})

test('quoting: a destination and a --remote-path with spaces, quotes, $(), backticks, ; and a newline land literally and run nothing', { skip, timeout: 60_000 }, async () => {
  const h = cluster.hosts[0]!
  // A newline is a legal file name character: herd allows it in the destination, which never passes through a shell.
  const dest = `/srv/q "d" 'e'/it's $(touch pwned-d1);\`touch pwned-d2\`\nline 2; touch pwned-d3 | x & y.bin`
  fs.mkdirSync(cluster.hostPath(h, path.posix.dirname(dest)), { recursive: true })
  const remotePath = `.cache/herd "rp" 'x' $(touch pwned-r1) \`touch pwned-r2\`; touch pwned-r3 && y`
  const r = await herd(cluster, [file.path, dest, '--hostlist', h.alias, '--remote-path', remotePath])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.report!.destination, dest)
  assert.equal(await cluster.sha256On(h, dest), file.sha256)
  const wd = cluster.hostPath(h, `/root/${remotePath}`)
  assert.ok(fs.statSync(wd).isDirectory(), 'the working folder has the literal name')
  assert.equal(fs.statSync(wd).mode & 0o777, 0o700)
  assert.ok(fs.readdirSync(wd).some((n) => /^agent-[0-9a-f]+\.mjs$/.test(n)), 'the agent is in that folder')
  assert.deepEqual(leftovers(cluster, h, dest), [])
  for (const dir of ['/root', '/srv', '/tmp', path.posix.dirname(dest), `/root/${remotePath}`]) {
    const found = fs.readdirSync(cluster.hostPath(h, dir)).filter((n) => n.startsWith('pwned'))
    assert.deepEqual(found, [], `a command ran on ${h.alias} (in ${dir})`)
  }
  await assertNothingLeftRunning()
})

test('the working folder is refused when owned by another user, writable by group or others, or a symbolic link', { skip, timeout: 90_000 }, async () => {
  const h = cluster.hosts[1]!
  const make = (name: string, mode: number, uid = 0): string => {
    const dir = cluster.hostPath(h, `/root/${name}`)
    fs.mkdirSync(dir, { mode: 0o700 })
    fs.chmodSync(dir, mode)
    fs.chownSync(dir, uid, uid)
    return dir
  }
  const cases: { name: string; setup: () => string; cause: RegExp }[] = [
    { name: 'wd-other-user', setup: () => make('wd-other-user', 0o700, 65534), cause: /is owned by uid 65534, not by the login user \(uid 0\); herd refuses it/ },
    { name: 'wd-group-writable', setup: () => make('wd-group-writable', 0o770), cause: /is writable by group or others \(mode 770\); run chmod 700/ },
    { name: 'wd-other-writable', setup: () => make('wd-other-writable', 0o1777), cause: /is writable by group or others \(mode 777\)/ },
    {
      name: 'wd-link',
      setup: () => {
        const real = make('wd-real', 0o700)
        fs.symlinkSync(real, cluster.hostPath(h, '/root/wd-link'))
        return real
      },
      cause: /is a symbolic link; herd refuses it/,
    },
  ]
  for (const c of cases) {
    const dir = c.setup()
    const r = await herd(cluster, [file.path, `/srv/${c.name}.bin`, '--hostlist', h.alias, '--remote-path', `/root/${c.name}`, '--retry', '2'])
    assert.equal(r.code, 1, `${c.name}: ${r.stderr}`)
    const rep = r.report!.hosts[0]!
    assert.equal(rep.kind, 'unsafe-folder', c.name)
    assert.match(rep.cause!, c.cause)
    assert.match(rep.cause!, /set --remote-path to another folder\)?$/, `${c.name}: the fix names the flag`)
    assert.equal(rep.attempts, 1, `${c.name}: a cause that can't change by itself is not retried`)
    assert.deepEqual(fs.readdirSync(dir), [], `${c.name}: something was written into the refused folder`)
    assert.equal(await cluster.sha256On(h, `/srv/${c.name}.bin`), null)
  }
  await assertNothingLeftRunning()
})

test('a file planted under the agent\'s name is never executed: its hash fails, the real agent is uploaded over it', { skip, timeout: 60_000 }, async () => {
  const h = cluster.hosts[2]!
  const agent = loadAgentBundle()
  const wd = cluster.hostPath(h, '/root/.cache/herd-action')
  fs.mkdirSync(wd, { recursive: true, mode: 0o700 })
  fs.chmodSync(wd, 0o700)
  // Same name and size as the real agent, so only the hash check can tell it apart.
  const payload = "import fs from 'node:fs'\nfs.writeFileSync('/root/planted-agent-ran', 'yes')\nprocess.exit(0)\n//"
  const planted = Buffer.concat([Buffer.from(payload), Buffer.alloc(agent.bytes.length - payload.length, 0x20)])
  assert.equal(planted.length, agent.bytes.length)
  fs.writeFileSync(path.join(wd, agent.remoteName), planted, { mode: 0o600 })
  const logs = path.join(work, 'logs-planted')
  const r = await herd(cluster, [file.path, '/srv/planted.bin', '--hostlist', h.alias, '--log-dir', logs])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(await cluster.sha256On(h, '/srv/planted.bin'), file.sha256)
  assert.equal(fs.existsSync(cluster.hostPath(h, '/root/planted-agent-ran')), false, 'the planted file was executed')
  assert.ok(fs.readFileSync(path.join(wd, agent.remoteName)).equals(agent.bytes), 'the real agent replaced the planted file')
  assert.match(fs.readFileSync(path.join(logs, `${h.alias}.log`), 'utf8'), /agent file failed its hash check on the host; uploading it again/)
  await assertNothingLeftRunning()
})

/** GET (or another method) on the tracker with a plain HTTP client. */
function request(port: number, pathAndQuery: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathAndQuery, method, agent: false }, (res) => {
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** An announce query as a BitTorrent client sends it (binary fields percent-encoded). */
function announceQuery(infoHashHex: string, event: string | null = 'started'): string {
  const enc = (b: Buffer) => [...b].map((x) => `%${x.toString(16).padStart(2, '0')}`).join('')
  return `?info_hash=${enc(Buffer.from(infoHashHex, 'hex'))}&peer_id=${enc(crypto.randomBytes(20))}&port=6881&uploaded=0&downloaded=0&left=100&compact=1${event ? `&event=${event}` : ''}`
}

test('the tracker asks for announces every 2 s while hosts join, and every intervalSeconds once they have', { timeout: 30_000 }, async () => {
  const infoHash = crypto.randomBytes(20).toString('hex')
  const tracker = await startTracker({ infoHash, ports: [0, 0], intervalSeconds: 10, joiningWindowMs: 500 })
  try {
    const announce = new URL(tracker.urlFor('127.0.0.1')).pathname
    const interval = async (event: string | null) => /8:intervali(\d+)e/.exec((await request(tracker.port, `${announce}${announceQuery(infoHash, event)}`)).body)?.[1]
    assert.equal(await interval('started'), '2', 'a host joining')
    assert.equal(await interval(null), '2', 'a regular announce just after a host joined')
    // Regular announces do not extend the joining window: once it has passed the answer changes.
    const began = Date.now()
    await waitUntil('the joining window to pass', async () => (await interval(null)) === '10', 5000)
    assert.ok(Date.now() - began >= 300, 'not before the window (500 ms) passed')
    assert.equal(await interval('started'), '2', 'a late host joins')
  } finally {
    await tracker.close()
  }
})

test('the tracker answers only this run\'s info hash under this run\'s secret', { timeout: 30_000 }, async () => {
  const infoHash = crypto.randomBytes(20).toString('hex')
  const tracker = await startTracker({ infoHash, ports: [0, 0], intervalSeconds: 2 })
  const other = await startTracker({ infoHash, ports: [0, 0], intervalSeconds: 2 })
  try {
    assert.match(tracker.secret, /^[0-9a-f]{32}$/)
    assert.notEqual(tracker.secret, other.secret, 'each run has its own secret')
    const url = new URL(tracker.urlFor('127.0.0.1'))
    assert.equal(url.pathname, `/${tracker.secret}/announce`)
    const good = await request(tracker.port, `${url.pathname}${announceQuery(infoHash)}`)
    assert.equal(good.status, 200)
    assert.match(good.body, /8:intervali2e/, `a real answer: ${good.body}`)
    assert.doesNotMatch(good.body, /failure reason/)

    for (const [what, p] of [
      ['no secret', `/announce${announceQuery(infoHash)}`],
      ['a wrong secret', `/${crypto.randomBytes(16).toString('hex')}/announce${announceQuery(infoHash)}`],
      ["another run's secret", `/${other.secret}/announce${announceQuery(infoHash)}`],
      ['a secret prefix', `/${tracker.secret.slice(0, 16)}/announce${announceQuery(infoHash)}`],
      ['the scrape endpoint', `/${tracker.secret}/scrape${announceQuery(infoHash)}`],
      ['the stats page', '/stats'],
    ] as const) {
      const r = await request(tracker.port, p)
      assert.equal(r.status, 403, `${what}: ${r.status} ${r.body}`)
      assert.doesNotMatch(r.body, /peers|interval/, `${what} leaked an answer`)
    }
    const post = await request(tracker.port, `${url.pathname}${announceQuery(infoHash)}`, 'POST')
    assert.equal(post.status, 403, 'POST is refused')

    const stranger = await request(tracker.port, `${url.pathname}${announceQuery(crypto.randomBytes(20).toString('hex'))}`)
    assert.match(stranger.body, /failure reason/, `another info hash is refused: ${stranger.status} ${stranger.body}`)
    assert.doesNotMatch(stranger.body, /5:peers/)
    assert.deepEqual(tracker.stats(), { announces: 2, refused: 7 })
  } finally {
    await tracker.close()
    await other.close()
  }
})

test('secrets (the private key, its passphrase, the run\'s tracker secret) never appear in logs or the report', { skip, timeout: 90_000 }, async () => {
  const hosts = cluster.hosts
  const passphrase = `pass-${crypto.randomBytes(12).toString('hex')}`
  const key = path.join(work, 'id_encrypted')
  fs.copyFileSync(cluster.identityPath, key)
  fs.chmodSync(key, 0o600)
  assert.equal(spawnSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', passphrase, '-f', key]).status, 0)
  // A --node wrapper on each host records what the runner sends the agent, to learn the run's secret.
  const wrapper = nodeWrapper(`exec /bin/sh -c 'tee /root/agent-stdin.jsonl | "$0" "$@"' ${process.execPath} "$@"`)
  for (const h of hosts) fs.writeFileSync(cluster.hostPath(h, '/root/node-recording'), wrapper, { mode: 0o755 })
  const logs = path.join(work, 'logs-secrets')
  const r = await herd(cluster, [file.path, '/srv/secrets.bin', '--hostlist', hosts.map(alias).join(','), '-i', key, '--node', '/root/node-recording', '--log-dir', logs], {
    env: { HERD_SSH_PASSPHRASE: passphrase },
  })
  assert.equal(r.code, 0, r.stderr)
  for (const h of hosts) assert.equal(await cluster.sha256On(h, '/srv/secrets.bin'), file.sha256)

  const start = JSON.parse(fs.readFileSync(cluster.hostPath(hosts[0]!, '/root/agent-stdin.jsonl'), 'utf8').split('\n')[0]!) as { torrent: string }
  const runSecret = /\/([0-9a-f]{32})\/announce/.exec(Buffer.from(start.torrent, 'base64').toString('latin1'))?.[1]
  assert.ok(runSecret, 'the start message carries the tracker URL with its secret')
  const keyText = fs.readFileSync(key, 'utf8')
  const keyBody = keyText.split('\n').filter((l) => l && !l.startsWith('-----'))
  const plainKeyBody = fs.readFileSync(cluster.identityPath, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'))
  const secrets: [string, string][] = [
    ['the passphrase', passphrase],
    ['the run secret', runSecret],
    ...keyBody.map((l, i): [string, string] => [`line ${i + 1} of the encrypted key`, l]),
    ...plainKeyBody.map((l, i): [string, string] => [`line ${i + 1} of the private key`, l]),
  ]
  const places: [string, string][] = [
    ['stdout (the JSON report)', r.stdout],
    ['stderr', r.stderr],
    ...fs.readdirSync(logs).map((n): [string, string] => [`log ${n}`, fs.readFileSync(path.join(logs, n), 'utf8')]),
  ]
  assert.ok(places.length > hosts.length, 'one log per host')
  for (const h of hosts) assert.match(fs.readFileSync(path.join(logs, `${h.alias}.log`), 'utf8'), /auth: trying identity .*id_encrypted/, 'the encrypted key was used')
  for (const [where, text] of places) {
    for (const [what, secret] of secrets) assert.ok(!text.includes(secret), `${what} appears in ${where}`)
  }
  await assertNothingLeftRunning()
})
