// The destination on real hosts: a temporary file never written through a planted link, one run at a
// time per destination, and modes and owners as a deploy expects.
import crypto from 'node:crypto'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { clusterForFile, endedAfterEach, type TestFile } from './support/fixture.js'
import type { Cluster } from './support/cluster.js'
import { cliPath, herd, randomFile, repoRoot, waitUntil } from './support/herd.js'

const MiB = 1024 * 1024
let cluster: Cluster
let work: string
let file: TestFile

const skip = clusterForFile({ hosts: 2, rateMbit: 100, prefix: 'herd-destination-', file: { name: 'app.bin', bytes: 48 * MiB } }, (fx) => ({ cluster, work, file } = fx))

const started = endedAfterEach()

const aliases = () => cluster.hosts.map((h) => h.alias).join(',')

test('a symbolic link planted at the temporary file\'s name in a folder others may write is never written through', { skip, timeout: 120_000 }, async () => {
  for (const h of cluster.hosts) {
    const shared = cluster.hostPath(h, '/srv/shared')
    fs.mkdirSync(shared, { recursive: true })
    fs.chmodSync(shared, 0o1777)
    fs.writeFileSync(cluster.hostPath(h, '/srv/precious'), 'do not overwrite\n')
    const planted = path.join(shared, `.app.bin.herd-${file.sha256.slice(0, 16)}.part`)
    fs.symlinkSync('/srv/precious', planted)
    fs.lchownSync(planted, 65534, 65534)
  }
  const r = await herd(cluster, [file.path, '/srv/shared/app.bin', '--hostlist', aliases()])
  assert.equal(r.code, 0, r.stderr)
  for (const h of cluster.hosts) {
    assert.equal(fs.readFileSync(cluster.hostPath(h, '/srv/precious'), 'utf8'), 'do not overwrite\n', `${h.alias}: written through the link`)
    assert.equal(await cluster.sha256On(h, '/srv/shared/app.bin'), file.sha256)
    assert.deepEqual(fs.readdirSync(cluster.hostPath(h, '/srv/shared')), ['app.bin'])
  }
})

test('two runs at once to one destination: the second is refused naming the first, which completes', { skip, timeout: 180_000 }, async () => {
  const dest = '/srv/once.bin'
  const child = cluster.spawnInRunner(['node', cliPath, file.path, dest, '--hostlist', aliases(), '--json'], { cwd: repoRoot })
  started.add(() => { if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL') })
  let stdout = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d))
  child.stdin!.end()
  const firstDone = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const h = cluster.hosts[0]!
  await waitUntil('the first run to be writing', () => fs.readdirSync(cluster.hostPath(h, '/srv')).some((n) => n.startsWith('.once.bin.herd-')), 60_000)
  const second = await herd(cluster, [file.path, dest, '--hostlist', h.alias, '--port', '9100-9200'])
  assert.equal(second.code, 1, second.stderr)
  const refused = second.report!.hosts[0]!
  assert.equal(refused.kind, 'busy', refused.cause)
  assert.match(refused.cause!, /^another herd run is pushing to \/srv\/once\.bin \(agent pid \d+ on this host, since .*\); wait for it to finish/)
  assert.equal(refused.attempts, 1)
  assert.equal(await firstDone, 0, stdout)
  for (const x of cluster.hosts) assert.equal(await cluster.sha256On(x, dest), file.sha256, x.alias)
})

test('a 0666 file from a umask-0000 job lands 0644; an existing 0640 root:adm destination stays 0640 root:adm', { skip, timeout: 120_000 }, async () => {
  const loose = randomFile(work, 'loose.bin', 2 * MiB, 0o666)
  fs.chmodSync(loose.path, 0o666)
  const r = await herd(cluster, [loose.path, '/srv/loose.bin', '--hostlist', aliases()])
  assert.equal(r.code, 0, r.stderr)
  for (const h of cluster.hosts) assert.equal(fs.statSync(cluster.hostPath(h, '/srv/loose.bin')).mode & 0o7777, 0o644, h.alias)

  const adm = 4 // Debian's adm group
  for (const h of cluster.hosts) {
    const p = cluster.hostPath(h, '/srv/config.bin')
    fs.writeFileSync(p, 'old\n')
    fs.chownSync(p, 0, adm)
    fs.chmodSync(p, 0o640)
  }
  const again = await herd(cluster, [loose.path, '/srv/config.bin', '--hostlist', aliases()])
  assert.equal(again.code, 0, again.stderr)
  for (const h of cluster.hosts) {
    const st = fs.statSync(cluster.hostPath(h, '/srv/config.bin'))
    assert.equal(await cluster.sha256On(h, '/srv/config.bin'), loose.sha256)
    assert.equal(st.mode & 0o7777, 0o640, `${h.alias}: mode`)
    assert.deepEqual([st.uid, st.gid], [0, adm], `${h.alias}: owner`)
  }
})

test('--post-command runs once per host after the file is in place; a failing one fails its host with the code', { skip, timeout: 180_000 }, async () => {
  const [ok, bad] = cluster.hosts as [typeof cluster.hosts[0], typeof cluster.hosts[0]]
  fs.writeFileSync(cluster.hostPath(bad, '/srv/fail-here'), '')
  const logs = path.join(work, 'logs-post')
  const command = 'sha256sum "$HERD_DEST" >> /srv/post.log; if [ -e /srv/fail-here ]; then echo "restart failed: unit not found"; exit 3; fi'
  const r = await herd(cluster, [file.path, '/srv/post.bin', '--hostlist', aliases(), '--post-command', command, '--log-dir', logs])
  assert.equal(r.code, 1, r.stderr)
  assert.deepEqual(r.report!.succeeded, [ok.alias])
  const failed = r.report!.hosts.find((h) => h.host === bad.alias)!
  assert.equal(failed.kind, 'post-command')
  assert.equal(failed.postCommandExit, 3)
  assert.match(failed.cause!, /post-command exited with 3: restart failed: unit not found/)
  assert.match(fs.readFileSync(path.join(logs, `${bad.alias}.log`), 'utf8'), /post-command says: restart failed: unit not found/)
  for (const h of cluster.hosts) {
    // It ran once, and read the new content (the file was in place).
    assert.equal(fs.readFileSync(cluster.hostPath(h, '/srv/post.log'), 'utf8'), `${file.sha256}  /srv/post.bin\n`, h.alias)
    assert.equal(await cluster.sha256On(h, '/srv/post.bin'), file.sha256)
  }
})

test('a reader sampling the destination every 20 ms during a push finds the old file or the new one, never a partial one', { skip, timeout: 120_000 }, async () => {
  const h = cluster.hosts[0]!
  const old = randomFile(work, 'sampled-old.bin', 8 * MiB)
  const next = randomFile(work, 'sampled-new.bin', 8 * MiB)
  assert.equal((await herd(cluster, [old.path, '/srv/sampled.bin', '--hostlist', h.alias])).code, 0)
  const seen: string[] = []
  const dest = cluster.hostPath(h, '/srv/sampled.bin')
  const sample = () => seen.push(crypto.createHash('sha256').update(fs.readFileSync(dest)).digest('hex'))
  sample()
  const timer = setInterval(sample, 20)
  const r = await herd(cluster, [next.path, '/srv/sampled.bin', '--hostlist', h.alias])
  clearInterval(timer)
  sample()
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual(seen.filter((s) => s !== old.sha256 && s !== next.sha256), [], 'a sample was neither file')
  assert.ok(seen.includes(old.sha256) && seen.at(-1) === next.sha256, `the samples saw the switch (${seen.length} samples: ${seen.filter((s) => s === old.sha256).length} old, ${seen.filter((s) => s === next.sha256).length} new)`)
})
