// A folder as one payload, on local files: packed, unpacked identical (modes, links, dotfiles, long names), unsafe payloads refused.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { after, test } from 'node:test'
import tar from 'tar-stream'
import { packTree, treeDigest, walkTree, payloadSizeOf } from '../src/engine/tree.js'
import { unpackTree } from '../src/agent/unpack.js'
import { makeSampleTree, treeListing as listing } from './support/sample-tree.js'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-tree-'))
after(() => fs.rmSync(work, { recursive: true, force: true }))

test('a tree packs into a tar GNU tar reads, and unpacks identical: same listing, same digest', async () => {
  const src = path.join(work, 'src')
  makeSampleTree(src)
  const out = path.join(work, 'payload.tar')
  const { digest, entries } = await packTree(src, out)
  assert.equal(entries, walkTree(src).length)
  assert.equal(digest, await treeDigest(src))
  assert.ok(Math.abs(fs.statSync(out).size - payloadSizeOf(walkTree(src))) <= 2048, 'the size estimate is close to the tar')
  const gnu = spawnSync('tar', ['-tvf', out], { encoding: 'utf8' })
  assert.equal(gnu.status, 0, gnu.stderr)
  assert.match(gnu.stdout, /lib\/run-link -> \.\.\/bin\/run/)
  assert.match(gnu.stdout, new RegExp(`${'n'.repeat(120)}\\.txt`))
  const dest = path.join(work, 'dest')
  fs.mkdirSync(dest, { mode: 0o700 })
  await unpackTree(out, dest, {})
  assert.equal(listing(dest), listing(src))
  assert.equal(await treeDigest(dest), digest)
  assert.equal(fs.statSync(path.join(dest, 'secret.key')).mode & 0o7777, 0o600)
  assert.equal(fs.statSync(path.join(dest, 'bin/run')).mode & 0o7777, 0o755)
  assert.deepEqual(fs.readdirSync(path.join(dest, 'empty')), [])
  // One changed byte, mode or link target is another tree.
  fs.chmodSync(path.join(dest, 'bin/run'), 0o700)
  assert.notEqual(await treeDigest(dest), digest)
})

test('a group-writable file from a umask-0000 job lands without write for group and others', async () => {
  const src = path.join(work, 'umask')
  fs.mkdirSync(src)
  fs.writeFileSync(path.join(src, 'f'), 'x')
  fs.chmodSync(path.join(src, 'f'), 0o666)
  fs.chmodSync(src, 0o777)
  const out = path.join(work, 'umask.tar')
  await packTree(src, out)
  const dest = path.join(work, 'umask-dest')
  fs.mkdirSync(dest)
  await unpackTree(out, dest, {})
  assert.equal(fs.statSync(path.join(dest, 'f')).mode & 0o7777, 0o644)
})

async function tarOf(entries: { name: string; type?: 'file' | 'symlink' | 'directory'; linkname?: string; body?: string }[]): Promise<string> {
  const file = path.join(work, `evil-${crypto.randomBytes(4).toString('hex')}.tar`)
  const pack = tar.pack()
  const sink = fs.createWriteStream(file)
  pack.pipe(sink)
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname }, e.type === 'file' || !e.type ? (e.body ?? 'x') : undefined as never)
  pack.finalize()
  await once(sink, 'close')
  return file
}

test('a payload naming a path outside the folder, or below a link it made, is refused and writes nothing outside', async () => {
  const outside = path.join(work, 'outside')
  fs.mkdirSync(outside)
  for (const entries of [
    [{ name: '../escaped' }],
    [{ name: '/abs' }],
    [{ name: 'link', type: 'symlink' as const, linkname: outside }, { name: 'link/escaped' }],
  ]) {
    const dest = fs.mkdtempSync(path.join(work, 'unsafe-'))
    await assert.rejects(unpackTree(await tarOf(entries), dest, {}), /unsafe name|not one of its folders/)
    assert.deepEqual(fs.readdirSync(outside), [])
    assert.ok(!fs.existsSync(path.join(work, 'escaped')))
  }
})
