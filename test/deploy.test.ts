// Folders on real hosts: a tree lands identical on 8 hosts, a re-run moves nothing, releases switch by
// one link, and a reader opening the destination during a push never finds a partial tree.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { clusterForFile } from './support/fixture.js'
import type { Cluster, ClusterHost } from './support/cluster.js'
import { herd } from './support/herd.js'
import { makeSampleTree, treeListing } from './support/sample-tree.js'

let cluster: Cluster
let work: string

const skip = clusterForFile({ hosts: 8, prefix: 'herd-deploy-', file: { name: 'unused.bin', bytes: 1024 } }, (fx) => ({ cluster, work } = fx))

const aliases = () => cluster.hosts.map((h) => h.alias).join(',')

function tree(name: string, variant: string, dataBytes = 300_000): string {
  const root = path.join(work, name)
  makeSampleTree(root, variant, dataBytes)
  return root
}

/**
 * A reader that opens `dest` every 20 ms and lists what it opened (through its descriptor, as a process
 * that cds there would): each sample is 'absent' or the tree's listing.
 */
function watch(folder: string): { samples: string[]; stop(): void } {
  const samples: string[] = []
  const timer = setInterval(() => {
    let fd: number
    try {
      fd = fs.openSync(folder, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
    } catch {
      samples.push('absent')
      return
    }
    try {
      samples.push(treeListing(`/proc/self/fd/${fd}`))
    } catch (err) {
      // An entry listed a moment ago is gone. Fine only if the reader holds the old tree, which herd removes
      // once the new one is in place: then another tree sits at the destination now.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !replaced(folder, fd)) throw err
    } finally {
      fs.closeSync(fd)
    }
  }, 20)
  return { samples, stop: () => clearInterval(timer) }
}

/** Whether the folder at `folder` is no longer the one open as `fd`. */
function replaced(folder: string, fd: number): boolean {
  try {
    return fs.statSync(folder).ino !== fs.fstatSync(fd).ino
  } catch {
    return true
  }
}

function leftoversBeside(h: ClusterHost, dest: string): string[] {
  return fs.readdirSync(cluster.hostPath(h, path.dirname(dest))).filter((n) => n.startsWith(`.${path.basename(dest)}.herd-`))
}

test('a tree with nested and empty folders, a dotfile, links, an executable and a 0600 file lands identical on 8 hosts; a re-run moves nothing', { skip, timeout: 240_000 }, async () => {
  const src = tree('app-a', 'a')
  const r = await herd(cluster, [src, '/srv/app', '--hostlist', aliases()])
  assert.equal(r.code, 0, r.stderr)
  const expected = treeListing(src)
  for (const h of cluster.hosts) {
    assert.equal(treeListing(cluster.hostPath(h, '/srv/app')), expected, `${h.alias}: the listing differs`)
    assert.equal(fs.statSync(cluster.hostPath(h, '/srv/app')).mode & 0o7777, 0o755, h.alias)
    assert.deepEqual(leftoversBeside(h, '/srv/app'), [], `${h.alias}: leftovers beside the destination`)
  }
  assert.ok(r.report!.hosts.every((h) => h.transferred), 'every host fetched the first time')
  const again = await herd(cluster, [src, '/srv/app/', '--hostlist', aliases()])
  assert.equal(again.code, 0, again.stderr)
  for (const h of again.report!.hosts) assert.equal(h.transferred, false, `${h.host}: the identical tree was fetched again`)
  assert.equal(again.report!.bytesFromRunner, 0)
})

test('a reader opening the destination every 20 ms during a push finds the old tree or the new one, never a partial one', { skip, timeout: 240_000 }, async () => {
  const hosts = cluster.hosts.slice(0, 3).map((h) => h.alias).join(',')
  const a = tree('swap-a', 'a', 8_000_000)
  const b = tree('swap-b', 'b', 12_000_000)
  assert.equal((await herd(cluster, [a, '/srv/swap', '--hostlist', hosts])).code, 0)
  const h = cluster.hosts[0]!
  const watcher = watch(cluster.hostPath(h, '/srv/swap'))
  const r = await herd(cluster, [b, '/srv/swap', '--hostlist', hosts])
  watcher.stop()
  assert.equal(r.code, 0, r.stderr)
  const [before, after] = [treeListing(a), treeListing(b)]
  const partial = watcher.samples.filter((s) => s !== before && s !== after && s !== 'absent')
  assert.deepEqual(partial, [], 'a sample showed neither tree')
  assert.ok(watcher.samples.includes(before) && watcher.samples.at(-1) === after, `the watcher saw the switch (${watcher.samples.length} samples)`)
  assert.ok(watcher.samples.filter((s) => s === 'absent').length <= 1, 'the folder was missing for more than an instant')
  assert.deepEqual(leftoversBeside(h, '/srv/swap'), [], 'the old tree was removed')
})

test('--releases 3 pushed four times: current is the newest, three releases remain, and the switch leaves no moment without a tree', { skip, timeout: 300_000 }, async () => {
  const hosts = cluster.hosts.slice(0, 4)
  const list = hosts.map((h) => h.alias).join(',')
  const variants = ['r1', 'r2', 'r3', 'r4'].map((v) => tree(`rel-${v}`, v, 4_000_000))
  const watcher = watch(cluster.hostPath(hosts[0]!, '/srv/site/current'))
  for (const src of variants) {
    const r = await herd(cluster, [src, '/srv/site', '--releases', '3', '--hostlist', list])
    assert.equal(r.code, 0, r.stderr)
  }
  watcher.stop()
  const listings = variants.map((v) => treeListing(v))
  for (const h of hosts) {
    const site = cluster.hostPath(h, '/srv/site')
    const releases = fs.readdirSync(path.join(site, 'releases')).sort()
    assert.equal(releases.length, 3, `${h.alias}: ${releases.join(', ')}`)
    assert.equal(fs.readlinkSync(path.join(site, 'current')), `releases/${releases.at(-1)}`)
    assert.equal(treeListing(path.join(site, 'current')), listings[3], `${h.alias}: current is not the newest`)
    assert.equal(treeListing(path.join(site, 'releases', releases[0]!)), listings[1], `${h.alias}: the oldest kept release is not the second push`)
  }
  // Every host names its releases alike: a rollback is the same link on all of them.
  const names = hosts.map((h) => fs.readdirSync(cluster.hostPath(h, '/srv/site/releases')).sort().join(','))
  assert.equal(new Set(names).size, 1, names.join(' | '))
  const seen = watcher.samples.filter((s) => s !== 'absent')
  assert.ok(seen.every((s) => listings.includes(s)), 'a sample of current showed a partial tree')
  assert.ok(listings.every((l) => seen.includes(l)), 'the watcher saw every release go live')
  const firstLive = watcher.samples.findIndex((s) => s !== 'absent')
  assert.ok(watcher.samples.slice(firstLive).every((s) => s !== 'absent'), 'current was missing during a switch')
  // The same tree again is no new release.
  const again = await herd(cluster, [variants[3]!, '/srv/site', '--releases', '3', '--hostlist', list])
  assert.equal(again.code, 0, again.stderr)
  assert.ok(again.report!.hosts.every((h) => !h.transferred))
  assert.equal(fs.readdirSync(cluster.hostPath(hosts[0]!, '/srv/site/releases')).length, 3)
})

test('a folder with --post-command and --post-batch 2 on 4 hosts: each runs once on the new tree, never more than 2 at once', { skip, timeout: 240_000 }, async () => {
  const hosts = cluster.hosts.slice(0, 4)
  const src = tree('batched', 'batch-v2')
  // Every run appends its start and end (ns) and what it read to one file all hosts see.
  const trace = path.join(cluster.dir, 'post-trace')
  fs.writeFileSync(trace, '')
  fs.chmodSync(trace, 0o666)
  const command = `echo "start $(date +%s%N) $(cat "$HERD_DEST/.env")" >> ${trace}; sleep 1; echo "end $(date +%s%N)" >> ${trace}`
  const r = await herd(cluster, [src, '/srv/batched', '--hostlist', hosts.map((h) => h.alias).join(','), '--post-command', command, '--post-batch', '2'])
  assert.equal(r.code, 0, r.stderr)
  const events = fs.readFileSync(trace, 'utf8').trim().split('\n').map((l) => l.split(' ')).map(([what, ns, read]) => ({ what: what!, at: BigInt(ns!), read }))
  events.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0))
  let running = 0
  let most = 0
  for (const e of events) {
    running += e.what === 'start' ? 1 : -1
    most = Math.max(most, running)
  }
  const starts = events.filter((e) => e.what === 'start')
  assert.equal(starts.length, 4, 'once per host')
  assert.ok(starts.every((e) => e.read === 'VARIANT=batch-v2'), 'a post-command read the old tree')
  assert.equal(most, 2, `${most} post-commands ran at once with --post-batch 2`)
})

test('--owner and --group give a folder\'s every entry, and --mode a file, what they ask; an unknown user fails the host before any byte moves', { skip, timeout: 180_000 }, async () => {
  const [h] = cluster.hosts as [ClusterHost]
  const src = tree('owned', 'owned')
  const r = await herd(cluster, [src, '/srv/owned', '--hostlist', h.alias, '--owner', 'nobody', '--group', 'adm'])
  assert.equal(r.code, 0, r.stderr)
  const root = cluster.hostPath(h, '/srv/owned')
  for (const rel of ['', 'bin/run', 'lib/run-link', 'empty', 'secret.key']) {
    const st = fs.lstatSync(path.join(root, rel))
    assert.deepEqual([st.uid, st.gid], [65534, 4], `${rel || '.'}: owner`)
  }
  assert.equal(fs.statSync(path.join(root, 'secret.key')).mode & 0o7777, 0o600)
  const file = path.join(work, 'modes.bin')
  fs.writeFileSync(file, 'x'.repeat(4096))
  const m = await herd(cluster, [file, '/srv/modes.bin', '--hostlist', h.alias, '--mode', '0640', '--group', 'adm'])
  assert.equal(m.code, 0, m.stderr)
  const st = fs.statSync(cluster.hostPath(h, '/srv/modes.bin'))
  assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o640, 0, 4])
  // The identical file again with another mode: set in place, nothing transferred.
  const again = await herd(cluster, [file, '/srv/modes.bin', '--hostlist', h.alias, '--mode', '0600'])
  assert.equal(again.code, 0, again.stderr)
  assert.equal(again.report!.hosts[0]!.transferred, false)
  assert.equal(fs.statSync(cluster.hostPath(h, '/srv/modes.bin')).mode & 0o7777, 0o600)
  const unknown = await herd(cluster, [file, '/srv/other.bin', '--hostlist', h.alias, '--owner', 'no-such-user'])
  assert.equal(unknown.code, 1)
  assert.match(unknown.report!.hosts[0]!.cause!, /no user named no-such-user on this host; create it there or give another --owner/)
  assert.equal(unknown.report!.hosts[0]!.attempts, 1, 'an unknown user is not retried')
  assert.ok(!fs.existsSync(cluster.hostPath(h, '/srv/other.bin')))
  assert.deepEqual(leftoversBeside(h, '/srv/other.bin'), [])
})
