// Two parts under the swarm, on real files and real protocol wires: the file store every agent and the
// runner use, and the agent's receive-buffer change to bittorrent-protocol.
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Transform } from 'node:stream'
import { after, test } from 'node:test'
import Wire from 'bittorrent-protocol'
import { FileStore } from '../src/core/swarm/file-store.js'
import { joinReceivedDataOncePerMessage } from '../src/agent/wire-buffer.js'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-parts-'))
after(() => fs.rmSync(work, { recursive: true, force: true }))

const KiB = 1024
const call = <T>(fn: (cb: (err: Error | null, value?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))))

test('the writable store puts whole pieces at their offsets and reads blocks back, the last piece short', async () => {
  const file = path.join(work, 'partial')
  fs.writeFileSync(file, '')
  const content = crypto.randomBytes(3 * 64 * KiB + 1000)
  const store = new FileStore(64 * KiB, { path: file, length: content.length, writable: true })
  const piece = (i: number) => content.subarray(i * 64 * KiB, Math.min(content.length, (i + 1) * 64 * KiB))
  // Out of order, as pieces verify in a swarm.
  for (const i of [3, 1, 0, 2]) await call((cb) => store.put(i, piece(i), cb))
  assert.deepEqual(fs.readFileSync(file), content)
  assert.deepEqual(Buffer.from(await call<Uint8Array>((cb) => store.get(1, { offset: 16 * KiB, length: 16 * KiB }, cb))), content.subarray(80 * KiB, 96 * KiB))
  assert.deepEqual(Buffer.from(await call<Uint8Array>((cb) => store.get(3, cb))), piece(3))
  await assert.rejects(call((cb) => store.put(1, piece(3), cb)), /chunk 1 has 1000 bytes, expected 65536/)
  await assert.rejects(call((cb) => store.get(3, { offset: 0, length: 2000 }, cb)), /out of range/)
  await call((cb) => store.close(cb))
  await assert.rejects(call((cb) => store.get(0, cb)), /closed/)
})

test('recent pieces are served from memory, older ones from the file, both with the right bytes', async () => {
  const file = path.join(work, 'recent')
  fs.writeFileSync(file, '')
  const content = crypto.randomBytes(8 * 16 * KiB)
  const store = new FileStore(16 * KiB, { path: file, length: content.length, writable: true, recentBytes: 2 * 16 * KiB })
  for (let i = 0; i < 8; i++) await call((cb) => store.put(i, content.subarray(i * 16 * KiB, (i + 1) * 16 * KiB), cb))
  for (let i = 0; i < 8; i++) {
    const got = await call<Uint8Array>((cb) => store.get(i, { offset: 1000, length: 4000 }, cb))
    assert.deepEqual(Buffer.from(got), content.subarray(i * 16 * KiB + 1000, i * 16 * KiB + 5000), `piece ${i}`)
  }
  // Two slots: pieces 6 and 7 from memory, the other six from the file.
  assert.deepEqual(store.reads, { recent: 2, file: 6 })
  await call((cb) => store.destroy(cb))
  assert.equal(fs.statSync(file).size, content.length, 'destroy keeps the file')
})

test('the read-only store refuses writes and never changes the file', async () => {
  const file = path.join(work, 'complete')
  const content = crypto.randomBytes(40 * KiB)
  fs.writeFileSync(file, content)
  const store = new FileStore(16 * KiB, { path: file, length: content.length })
  await assert.rejects(call((cb) => store.put(0, content.subarray(0, 16 * KiB), cb)), /read-only/)
  assert.deepEqual(Buffer.from(await call<Uint8Array>((cb) => store.get(2, cb))), content.subarray(32 * KiB))
  await call((cb) => store.close(cb))
  assert.deepEqual(fs.readFileSync(file), content)
})

/** Re-chunks a byte stream into pieces of `size` bytes, as a slow link's TCP segments arrive. */
function chopper(size: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      for (let at = 0; at < chunk.length; at += size) this.push(chunk.subarray(at, at + size))
      cb()
    },
  })
}

interface TestWire {
  handshake(infoHash: string, peerId: string, extensions?: Record<string, boolean>): void
  unchoke(): void
  request(index: number, offset: number, length: number, cb: (err: Error | null, block?: Uint8Array) => void): void
  on(event: 'request', fn: (index: number, offset: number, length: number, respond: (err: Error | null, block?: Uint8Array) => void) => void): void
  on(event: 'handshake' | 'unchoke', fn: () => void): void
  pipe<T>(dest: T): T
  destroy(): void
}

test('blocks that arrive in many small reads are parsed intact once per message', { timeout: 20_000 }, async () => {
  joinReceivedDataOncePerMessage()
  const source = crypto.randomBytes(4 * 16 * KiB)
  const seeder = new (Wire as unknown as new () => TestWire)()
  const leecher = new (Wire as unknown as new () => TestWire)()
  // Odd sizes, so message boundaries fall inside reads and every message spans several of them.
  seeder.pipe(chopper(1447)).pipe(leecher as unknown as NodeJS.WritableStream)
  leecher.pipe(chopper(7)).pipe(seeder as unknown as NodeJS.WritableStream)
  const infoHash = crypto.randomBytes(20).toString('hex')
  seeder.on('handshake', () => {
    seeder.handshake(infoHash, crypto.randomBytes(20).toString('hex'))
    seeder.unchoke()
  })
  seeder.on('request', (index, offset, length, respond) => respond(null, source.subarray(index * 16 * KiB + offset, index * 16 * KiB + offset + length)))
  const unchoked = new Promise<void>((resolve) => leecher.on('unchoke', resolve))
  leecher.handshake(infoHash, crypto.randomBytes(20).toString('hex'))
  await unchoked
  const blocks = await Promise.all([0, 1, 2, 3].map((i) => call<Uint8Array>((cb) => leecher.request(i, 0, 16 * KiB, cb))))
  assert.deepEqual(Buffer.concat(blocks), source)
  seeder.destroy()
  leecher.destroy()
})
