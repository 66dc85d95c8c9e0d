// The runner's hash cache (src/core/swarm/hash-cache.ts) on real files: an unchanged file is not hashed
// again, any write or another piece length hashes it anew, a damaged entry is ignored, entries are private.
import assert from 'node:assert/strict'
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

function sha256Of(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
}

test('an unchanged file gets its hashes from the earlier run; a write, a smaller file or another piece length are hashed again', async () => {
  const file = path.join(work, 'model.bin')
  fs.writeFileSync(file, crypto.randomBytes(CACHED_FROM_BYTES + 3 * MiB))
  const first = await hashFile(file)
  assert.equal(first.fromCache, false)
  assert.equal(first.sha256, sha256Of(file))
  const second = await hashFile(file)
  assert.equal(second.fromCache, true)
  assert.equal(second.sha256, first.sha256)
  assert.ok(second.pieceHashes.equals(first.pieceHashes))
  assert.notEqual(second.infoHash, first.infoHash, 'each run has a nonce of its own')
  // Entries are the user's alone.
  assert.equal(fs.statSync(hashCacheDir()).mode & 0o777, 0o700)
  for (const n of fs.readdirSync(hashCacheDir())) assert.equal(fs.statSync(path.join(hashCacheDir(), n)).mode & 0o777, 0o600, n)

  // Another piece length: its own hashes.
  const halves = await hashFile(file, { pieceLength: first.pieceLength / 2 })
  assert.equal(halves.fromCache, false)
  assert.equal(halves.pieceHashes.length, first.pieceHashes.length * 2)

  // One byte changed in place, size and mtime put back: the status-change time still tells.
  const st = fs.statSync(file)
  const fd = fs.openSync(file, 'r+')
  fs.writeSync(fd, Buffer.from([0x42 ^ fs.readFileSync(file)[5 * MiB]!]), 0, 1, 5 * MiB)
  fs.closeSync(fd)
  fs.utimesSync(file, st.atime, st.mtime)
  const changed = await hashFile(file)
  assert.equal(changed.fromCache, false)
  assert.equal(changed.sha256, sha256Of(file))
  assert.notEqual(changed.sha256, first.sha256)

  // Small files are hashed every time and leave no entry.
  const before = fs.readdirSync(hashCacheDir()).length
  const small = path.join(work, 'small.bin')
  fs.writeFileSync(small, crypto.randomBytes(MiB))
  assert.equal((await hashFile(small)).fromCache, false)
  assert.equal((await hashFile(small)).fromCache, false)
  assert.equal(fs.readdirSync(hashCacheDir()).length, before)
})

test('a damaged or foreign entry is ignored and the file hashed again', async () => {
  const file = path.join(work, 'index.bin')
  fs.writeFileSync(file, crypto.randomBytes(CACHED_FROM_BYTES + MiB))
  const first = await hashFile(file)
  const entries = fs.readdirSync(hashCacheDir()).map((n) => path.join(hashCacheDir(), n))
  const mine = entries.find((e) => fs.readFileSync(e, 'utf8').includes(first.sha256))!
  const entry = JSON.parse(fs.readFileSync(mine, 'utf8')) as { key: string; sha256: string; pieces: string }
  for (const damaged of ['{not json', JSON.stringify({ ...entry, pieces: entry.pieces.slice(0, 40) }), JSON.stringify({ ...entry, key: 'another file', sha256: 'f'.repeat(64) })]) {
    fs.writeFileSync(mine, damaged)
    const again = await hashFile(file)
    assert.equal(again.fromCache, false, damaged.slice(0, 40))
    assert.equal(again.sha256, first.sha256)
    assert.ok(again.pieceHashes.equals(first.pieceHashes))
  }
})
