// The runner's hash cache (src/core/swarm/hash-cache.ts) on real files: an unchanged, settled file is not
// hashed again; a fresh file is not kept; any write, another piece length or a failed spot check hashes it
// anew; a damaged entry is ignored; entries are private.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { hashFile } from '../src/core/swarm/torrent.js'
import { CACHED_FROM_BYTES, hashCacheDir } from '../src/core/swarm/hash-cache.js'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-hash-cache-'))
after(() => fs.rmSync(work, { recursive: true, force: true }))
process.env.HOME = work
const MiB = 1024 * 1024
const dir = () => hashCacheDir()!

function sha256Of(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
}

/** Resolves once `file` has been unchanged for 2 s (the cache keeps only settled files). */
async function settled(file: string): Promise<void> {
  const changed = fs.statSync(file, { bigint: true }).ctimeNs
  const wait = Number(changed / 1_000_000n) + 2100 - Date.now()
  if (wait > 0) await new Promise((r) => setTimeout(r, wait))
}

/** The cache entry that holds `sha256`, if any. */
function entryOf(sha256: string): string | undefined {
  if (!fs.existsSync(dir())) return undefined
  return fs.readdirSync(dir()).map((n) => path.join(dir(), n)).find((e) => fs.readFileSync(e, 'utf8').includes(sha256))
}

test('a settled, unchanged file gets its hashes from the earlier run; a fresh file is not kept; a write or another piece length is hashed again', { timeout: 60_000 }, async () => {
  const file = path.join(work, 'model.bin')
  fs.writeFileSync(file, crypto.randomBytes(CACHED_FROM_BYTES + 3 * MiB))
  // Written a moment ago: a write in the same tick might not show in its times, so nothing is kept.
  const fresh = await hashFile(file)
  assert.equal(fresh.fromCache, false)
  assert.equal(entryOf(fresh.sha256), undefined, 'a file written just now was kept')

  await settled(file)
  const first = await hashFile(file)
  assert.equal(first.fromCache, false)
  assert.equal(first.sha256, sha256Of(file))
  const second = await hashFile(file)
  assert.equal(second.fromCache, true)
  assert.equal(second.sha256, first.sha256)
  assert.ok(second.pieceHashes.equals(first.pieceHashes))
  assert.notEqual(second.infoHash, first.infoHash, 'each run has a nonce of its own')
  assert.equal(fs.statSync(dir()).mode & 0o777, 0o700)
  for (const n of fs.readdirSync(dir())) assert.equal(fs.statSync(path.join(dir(), n)).mode & 0o777, 0o600, n)

  // Another piece length: its own hashes.
  const halves = await hashFile(file, { pieceLength: first.pieceLength / 2 })
  assert.equal(halves.fromCache, false)
  assert.equal(halves.pieceHashes.length, first.pieceHashes.length * 2)

  // One byte changed in place, size and modification time put back to the nanosecond: the status-change time tells.
  const ref = path.join(work, 'times')
  fs.writeFileSync(ref, '')
  execFileSync('touch', ['-r', file, ref])
  const before = fs.statSync(file, { bigint: true })
  const fd = fs.openSync(file, 'r+')
  fs.writeSync(fd, Buffer.from([0x42 ^ fs.readFileSync(file)[5 * MiB]!]), 0, 1, 5 * MiB)
  fs.closeSync(fd)
  execFileSync('touch', ['-r', ref, file])
  assert.equal(fs.statSync(file, { bigint: true }).mtimeNs, before.mtimeNs, 'the modification time is the old one')
  const changed = await hashFile(file)
  assert.equal(changed.fromCache, false)
  assert.equal(changed.sha256, sha256Of(file))
  assert.notEqual(changed.sha256, first.sha256)

  // A file made for one run (a folder's tar) is not kept; nor is a small one.
  const tar = path.join(work, 'payload.tar')
  fs.copyFileSync(file, tar)
  const small = path.join(work, 'small.bin')
  fs.writeFileSync(small, crypto.randomBytes(MiB))
  await settled(small)
  await settled(tar)
  const count = fs.readdirSync(dir()).length
  assert.equal((await hashFile(tar, { cache: false })).fromCache, false)
  assert.equal((await hashFile(small)).fromCache, false)
  assert.equal((await hashFile(small)).fromCache, false)
  assert.equal(fs.readdirSync(dir()).length, count)
})

test('an entry whose pieces do not match the file (the spot check) is dropped; a damaged or foreign one is ignored', { timeout: 60_000 }, async () => {
  const file = path.join(work, 'index.bin')
  fs.writeFileSync(file, crypto.randomBytes(CACHED_FROM_BYTES + MiB))
  await settled(file)
  const first = await hashFile(file)
  const mine = entryOf(first.sha256)!
  const entry = JSON.parse(fs.readFileSync(mine, 'utf8')) as { key: string; sha256: string; pieces: string }

  // Stale: the identity matches but the first piece's hash is not the file's.
  const stale = Buffer.from(entry.pieces, 'base64')
  stale[0] ^= 0xff
  fs.writeFileSync(mine, JSON.stringify({ ...entry, pieces: stale.toString('base64') }))
  const checked = await hashFile(file)
  assert.equal(checked.fromCache, false)
  assert.ok(checked.pieceHashes.equals(first.pieceHashes))

  for (const damaged of ['{not json', JSON.stringify({ ...entry, pieces: entry.pieces.slice(0, 40) }), JSON.stringify({ ...entry, key: 'another file', sha256: 'f'.repeat(64) })]) {
    fs.writeFileSync(mine, damaged)
    const again = await hashFile(file)
    assert.equal(again.fromCache, false, damaged.slice(0, 40))
    assert.equal(again.sha256, first.sha256)
    assert.ok(again.pieceHashes.equals(first.pieceHashes))
  }
  assert.equal((await hashFile(file)).fromCache, true, 'kept again after the damaged entries')
})
