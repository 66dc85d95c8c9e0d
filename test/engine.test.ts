// The data plane's parts on loopback with real sockets and files: the seal, the wire, the store, the
// picker, and whole swarms (a seeder and downloading sides) checked by sha256.
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { after, test } from 'node:test'
import { makeHello, proofOf, sessionKeys, type RunSeal } from '../src/engine/seal.js'
import { BlockPool } from '../src/engine/block-pool.js'
import { Wire } from '../src/engine/wire.js'
import { Store, piecesPresent } from '../src/engine/store.js'
import { Bitfield } from '../src/engine/bitfield.js'
import { Picker, owns } from '../src/engine/picker.js'
import { ServeSlots } from '../src/engine/serve-slots.js'
import { Swarm, type Metainfo } from '../src/engine/swarm.js'
import { hashFile, pieceLengthFor, type FileTorrent } from '../src/core/swarm/torrent.js'
import { startSeeder, type Seeder } from '../src/core/swarm/seeder.js'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-engine-'))
// The runner keeps hashes under ~/.cache (src/core/swarm/hash-cache.ts): this test's own HOME, removed with it.
process.env.HOME = work
after(() => fs.rmSync(work, { recursive: true, force: true }))
const KiB = 1024
const MiB = 1024 * KiB

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
const metaOf = (t: FileTorrent): Metainfo => ({ infoHash: Buffer.from(t.infoHash, 'hex'), pieceLength: t.pieceLength, length: t.size, pieceHashes: t.pieceHashes })

function randomFile(name: string, bytes: number): string {
  const file = path.join(work, name)
  fs.writeFileSync(file, crypto.randomBytes(bytes))
  return file
}

test('sealed records survive any split of the byte stream; a flipped bit or another key is refused', () => {
  const secret = { secret: crypto.randomBytes(32), encrypt: true }
  const d = makeHello(crypto.randomBytes(20))
  const l = makeHello(crypto.randomBytes(20))
  const dialer = sessionKeys(secret, 'dialer', d, l)
  const listener = sessionKeys(secret, 'listener', d, l)
  const messages = [crypto.randomBytes(1), crypto.randomBytes(70_000), Buffer.alloc(0), crypto.randomBytes(MiB + 3)]
  const stream: Buffer[] = []
  for (const m of messages) dialer.sealer.seal([m.subarray(0, 10), m.subarray(10)], (b) => stream.push(Buffer.from(b.buffer, b.byteOffset, b.length)))
  const bytes = Buffer.concat(stream)
  assert.equal(bytes.includes(messages[1]!.subarray(0, 64)), false, 'plaintext is not on the wire')
  for (const split of [1, 7, 1447, 65536]) {
    const opener = sessionKeys(secret, 'listener', d, l).opener
    const records: Buffer[][] = []
    for (let at = 0; at < bytes.length; at += split) opener.push(bytes.subarray(at, at + split), (parts) => records.push(parts))
    // Joined only now: a part handed out must not change when later bytes arrive.
    assert.deepEqual(records.map((parts) => Buffer.concat(parts)), messages, `split every ${split} bytes`)
  }
  const flipped = Buffer.from(bytes)
  flipped[100]! ^= 1
  assert.throws(() => listener.opener.push(flipped, () => {}), /unable to authenticate|Unsupported state/)
  const stranger = sessionKeys({ secret: crypto.randomBytes(32), encrypt: true }, 'listener', d, l).opener
  assert.throws(() => stranger.push(bytes, () => {}), /unable to authenticate|Unsupported state/)
})

test('with a pool, large records arrive whole in its buffers, each handed out once; a refused record gives its buffer back', () => {
  for (const encrypt of [true, false]) {
    const secret = { secret: crypto.randomBytes(32), encrypt }
    const d = makeHello(crypto.randomBytes(20))
    const l = makeHello(crypto.randomBytes(20))
    const messages = [crypto.randomBytes(1), crypto.randomBytes(70_000), crypto.randomBytes(MiB + 3), crypto.randomBytes(5000), crypto.randomBytes(2 * MiB)]
    const stream: Buffer[] = []
    const { sealer } = sessionKeys(secret, 'dialer', d, l)
    for (const m of messages) sealer.seal([m], (b) => stream.push(Buffer.from(b.buffer, b.byteOffset, b.length)))
    const bytes = Buffer.concat(stream)
    const pool = new BlockPool(MiB + 3)
    const opener = sessionKeys(secret, 'listener', d, l, pool).opener
    const received: Buffer[] = []
    for (let at = 0; at < bytes.length; at += 1447) {
      opener.push(bytes.subarray(at, at + 1447), (parts) => {
        const whole = Buffer.concat(parts)
        // Pooled records come as one part of the pool; the 1-byte one and the one past the pool's size do not.
        assert.equal(pool.owns(parts[0]!), whole.length >= 4096 && whole.length <= MiB + 3, `${whole.length} bytes, encrypt ${encrypt}`)
        received.push(whole)
        parts.forEach((p) => pool.give(p))
        parts.forEach((p) => pool.give(p)) // a second give must not put the buffer in the free list twice
      })
    }
    assert.deepEqual(received, messages, `encrypt ${encrypt}`)
    assert.equal(pool.out, 0)
    assert.equal(pool.peak, 1, 'one buffer, used again for every pooled record')
    const a = pool.take(10)
    const b = pool.take(10)
    assert.notEqual(a.buffer, b.buffer, 'given twice, still handed out once')
    pool.give(a)
    pool.give(b)
    if (!encrypt) continue
    const flipped = Buffer.from(bytes)
    flipped[stream[0]!.length + stream[1]!.length + 100]! ^= 1
    const refusing = sessionKeys(secret, 'listener', d, l, pool).opener
    assert.throws(() => refusing.push(flipped, () => {}), /unable to authenticate|Unsupported state/)
    assert.equal(pool.out, 0, 'the refused record went back to the pool')
  }
})

test('with encryption off, records travel in the clear and still survive any split; the proofs differ from the sealed ones', () => {
  const plain = { secret: crypto.randomBytes(32), encrypt: false }
  const d = makeHello(crypto.randomBytes(20))
  const l = makeHello(crypto.randomBytes(20))
  const messages = [crypto.randomBytes(1), Buffer.alloc(0), crypto.randomBytes(70_000), crypto.randomBytes(5)]
  const stream: Buffer[] = []
  const { sealer } = sessionKeys(plain, 'dialer', d, l)
  assert.equal(sealer.copies, false, 'in the clear the parts themselves go to the socket')
  for (const m of messages) sealer.seal([m], (b) => stream.push(Buffer.from(b.buffer, b.byteOffset, b.length)))
  const bytes = Buffer.concat(stream)
  assert.ok(bytes.includes(messages[2]!), 'the bytes are on the wire as they are')
  for (const split of [1, 3, 4, 5, 1447]) {
    const opener = sessionKeys(plain, 'listener', d, l).opener
    const records: Buffer[][] = []
    for (let at = 0; at < bytes.length; at += split) opener.push(bytes.subarray(at, at + split), (parts) => records.push(parts))
    assert.deepEqual(records.map((parts) => Buffer.concat(parts)), messages, `split every ${split} bytes`)
  }
  // A peer can't be talked into the clear: the run's choice is part of what each side proves.
  assert.notDeepEqual(proofOf(plain, 'dialer', d, l), proofOf({ ...plain, encrypt: true }, 'dialer', d, l))
})

/** Two wires over a real loopback connection, each side with its own secret. */
async function wirePair(dialerSecret: RunSeal, listenerSecret: RunSeal): Promise<{ dialer: Wire; listener: Wire; close(): void }> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection') as Promise<[net.Socket]>
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  const dialer = new Wire(socket, 'dialer', dialerSecret, crypto.randomBytes(20))
  const [incoming] = await accepted
  const listener = new Wire(incoming, 'listener', listenerSecret, crypto.randomBytes(20))
  return { dialer, listener, close: () => { dialer.destroy('done'); listener.destroy('done'); server.close() } }
}

test('wires with the same secret meet and exchange messages; with another secret both ends close before anything moves', async () => {
  const secret = { secret: crypto.randomBytes(32), encrypt: true }
  const good = await wirePair(secret, secret)
  await Promise.all([once(good.dialer, 'ready'), once(good.listener, 'ready')])
  const block = crypto.randomBytes(300 * KiB)
  good.dialer.have(7)
  good.dialer.block(3, MiB, [block.subarray(0, 5), block.subarray(5)])
  assert.deepEqual(await once(good.listener, 'have'), [7])
  const [index, offset, parts] = (await once(good.listener, 'block')) as [number, number, Buffer[]]
  assert.deepEqual([index, offset, Buffer.concat(parts)], [3, MiB, block])
  good.close()

  const bad = await wirePair(secret, { secret: crypto.randomBytes(32), encrypt: true })
  let events = 0
  for (const w of [bad.dialer, bad.listener]) for (const e of ['ready', 'request', 'block', 'have'] as const) w.on(e, () => events++)
  const [[dialerWhy], [listenerWhy]] = await Promise.all([once(bad.dialer, 'close'), once(bad.listener, 'close')])
  assert.match(dialerWhy, /wrong secret/)
  assert.match(`${listenerWhy}`, /connection closed|wrong secret/)
  assert.equal(events, 0, 'nothing was exchanged')
  bad.close()
})

test('the store writes blocks out of order, reads them back, and finds verified pieces of a partial file', async () => {
  const content = crypto.randomBytes(5 * 64 * KiB + 1000)
  const file = path.join(work, 'store.part')
  fs.writeFileSync(file, '')
  const store = new Store({ path: file, length: content.length, writable: true })
  const at = (i: number) => content.subarray(i * 64 * KiB, Math.min(content.length, (i + 1) * 64 * KiB))
  for (const i of [5, 1, 0, 3]) await store.write(i * 64 * KiB, [at(i).subarray(0, 100), at(i).subarray(100)])
  await store.flushed()
  for (const i of [0, 1, 3, 5]) assert.deepEqual(Buffer.concat(await store.read(i * 64 * KiB, at(i).length)), at(i), `block ${i}`)
  // A range written again while its first write is under way (a piece fetched anew after a bad copy)
  // ends with the second write's bytes, whatever order the thread pool runs them in (without the order
  // kept, the first write landed last in 28 of 300 rounds here).
  const again = path.join(work, 'store-again.part')
  fs.writeFileSync(again, '')
  const twice = new Store({ path: again, length: 64 * KiB, writable: true })
  let firstLast = 0
  for (let round = 0; round < 300; round++) {
    const bad = crypto.randomBytes(64 * KiB)
    const good = crypto.randomBytes(64 * KiB)
    await Promise.all([twice.write(0, [bad]), twice.write(0, [good.subarray(0, 1000), good.subarray(1000)])])
    if (!Buffer.concat(await twice.read(0, 64 * KiB)).equals(good)) firstLast++
  }
  assert.equal(firstLast, 0, 'rounds where the first write landed last')
  await twice.close()
  await assert.rejects(store.read(content.length - 10, 20), /past the end/)
  await store.close()
  const pieceHashes = Buffer.concat(Array.from({ length: 6 }, (_, i) => crypto.createHash('sha1').update(at(i)).digest()))
  const have = new Bitfield(6)
  assert.equal(await piecesPresent(file, { length: content.length, pieceLength: 64 * KiB, pieceHashes }, have), 4, 'pieces 0, 1, 3 and 5; 2 and 4 are holes')
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => have.get(i)), [true, true, false, true, false, true])
})

test('the picker: stripes cover every piece once; the runner is asked for own pieces, never for what a peer offers, the rest only when starving, hosts apart', () => {
  for (const [pieces, of] of [[10, 3], [7, 7], [1000, 32], [5, 8]] as const) {
    const owners = Array.from({ length: pieces }, (_, i) => Array.from({ length: of }, (_, k) => k).filter((k) => owns({ index: k, of }, i)))
    assert.ok(owners.every((o) => o.length === 1), `${pieces} pieces over ${of} hosts: one owner each`)
  }
  const picker = new Picker(new Bitfield(12), { index: 1, of: 3 })
  const offered = new Set([1, 4])
  assert.equal(picker.fromRunner((i) => offered.has(i)), 7, 'own pieces are 1, 4, 7, 10; 1 and 4 are offered by a peer')
  picker.take(7)
  assert.equal(picker.fromRunner((i) => offered.has(i)), 10)
  for (const i of [1, 4, 7, 10]) picker.verified(i)
  assert.equal(picker.ownDone, true)
  assert.equal(picker.fromRunner(() => false), undefined, 'other pieces only when starving')
  picker.starving = true
  assert.equal(picker.fromRunner((i) => i === 5), 6, 'host 1 of 3 starts a third of the way into what is missing (0..11: from 4), skipping what it has and what a peer offers')
  for (const i of [6, 8, 9, 11]) picker.verified(i)
  picker.take(5)
  assert.equal(picker.fromRunner((i) => i === 0), 2, 'past the end it wraps to the lowest missing piece no peer offers')
  const offers = { queue: [4, 2, 2, 11], head: 0 }
  const peerHas = new Bitfield(12)
  peerHas.set(2)
  assert.equal(picker.fromPeer(offers, peerHas), 2, 'oldest offer first; a piece we have and one the peer lacks are skipped')
  picker.take(2)
  assert.equal(picker.fromPeer(offers, peerHas), undefined)
})

/** A file of `bytes` random bytes in pieces of `pieceLength`, a fresh sealed secret, and the runner's seeder for it on loopback. */
async function seeded(name: string, bytes: number, pieceLength: number, opts: { held?: boolean } = {}): Promise<{ source: string; t: FileTorrent; secret: RunSeal; seeder: Seeder }> {
  const source = randomFile(name, bytes)
  const t = await hashFile(source, { pieceLength })
  const secret = { secret: crypto.randomBytes(32), encrypt: true }
  return { source, t, secret, seeder: await startSeeder(source, t, { ports: [0], seal: secret, held: opts.held }) }
}

/** A downloading side on loopback, host `index` of `of`. */
async function downloader(t: FileTorrent, seal: RunSeal, runnerId: string, name: string, index: number, of: number): Promise<{ swarm: Swarm; port: number; file: string }> {
  const file = path.join(work, name)
  fs.writeFileSync(file, '')
  const swarm = new Swarm({
    meta: metaOf(t),
    seal,
    peerId: crypto.randomBytes(20),
    store: new Store({ path: file, length: t.size, writable: true }),
    have: new Bitfield(Math.ceil(t.size / t.pieceLength)),
    stripe: { index, of },
    runnerId,
  })
  return { swarm, port: await swarm.listen([0], '127.0.0.1'), file }
}

const finished = (s: Swarm) => (s.done ? Promise.resolve() : (once(s, 'done') as Promise<unknown>))

/** `finished`, or a failure saying `why()` once `ms` have passed. */
async function finishedWithin(s: Swarm, ms: number, why: () => string): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(why())), ms)))
  await Promise.race([finished(s), late]).finally(() => clearTimeout(timer))
}

test('the seeder\'s turns: first copies go first, but a host asking only for pieces already sent waits at most twice the line', () => {
  // One slot; A and B always ask for first copies, C for repeats only.
  const firstCopy = new Set(['A', 'B'])
  const slots = new ServeSlots<string>(1, (p) => firstCopy.has(p))
  assert.equal(slots.admit('A'), true)
  assert.equal(slots.admit('C'), false)
  assert.equal(slots.admit('B'), false)
  const served: string[] = []
  let current = 'A'
  for (let turn = 0; turn < 24; turn++) {
    const [next] = slots.turnDone(current, true)
    served.push(next!)
    current = next!
  }
  const order = served.join(' ')
  let gap = 0
  let longest = 0
  for (const p of served) longest = Math.max(longest, (gap = p === 'C' ? 0 : gap + 1))
  assert.ok(longest < 2 * 3, `C waited ${longest} turns in a line of 3: ${order}`)
  assert.ok(served.filter((p) => p !== 'C').length >= 12, `first copies got fewer than half the turns: ${order}`)
})

test('piece length: about 1024 pieces of 256 KiB to 16 MiB, halved to 16 KiB at the least until every host owns two, while the hashes stay within a quarter of the file', () => {
  const KiB = 1024
  assert.equal(pieceLengthFor(1024 * MiB), MiB)
  assert.equal(pieceLengthFor(1024 * MiB, 16), MiB, 'a fleet does not change a big file\'s pieces')
  assert.equal(pieceLengthFor(200 * MiB, 8), 256 * KiB)
  assert.equal(pieceLengthFor(50 * MiB, 32), 256 * KiB)
  assert.equal(pieceLengthFor(4 * 1024 * 1024 * MiB), 16 * MiB)
  // 20 MiB to 200 hosts: 80 pieces of 256 KiB left 120 hosts owning none.
  assert.equal(pieceLengthFor(20 * MiB, 200), 32 * KiB)
  for (const [size, hosts] of [[20 * MiB, 200], [64 * MiB, 1000], [1024 * MiB, 10_000], [5 * MiB, 77], [2 * MiB, 50]] as const) {
    const length = pieceLengthFor(size, hosts)
    const pieces = Math.ceil(size / length)
    const hashes = hosts * pieces * 20
    assert.ok(hashes <= size / 4, `${size} bytes to ${hosts} hosts: ${hashes} bytes of hashes`)
    const halved = hosts * Math.ceil(size / (length / 2)) * 20
    assert.ok(pieces >= 2 * hosts || length === 16 * KiB || halved > size / 4, `${size} bytes to ${hosts} hosts: ${pieces} pieces of ${length}, not halved`)
  }
  assert.equal(pieceLengthFor(64 * MiB, 1000), 128 * KiB, '512 pieces: 2,000 would send 40 MB of hashes')
  assert.equal(pieceLengthFor(MiB, 1000), 128 * KiB, 'a small file to many hosts: 8 pieces, as their hashes would outweigh it')
  assert.equal(pieceLengthFor(1024 * MiB, 10_000), MiB, 'past that the hashes need another way to the hosts')
})

test('a seeder and three downloaders: every copy identical, the runner sends about one copy, the hosts trade the rest', { timeout: 60_000 }, async () => {
  const { t, secret, seeder } = await seeded('swarm-source.bin', 24 * MiB + 12345, MiB)
  const sides = await Promise.all([0, 1, 2].map((i) => downloader(t, secret, seeder.peerId, `swarm-${i}.bin`, i, 3)))
  for (const s of sides) {
    s.swarm.connect('127.0.0.1', seeder.port)
    for (const o of sides) if (o !== s) s.swarm.connect('127.0.0.1', o.port)
  }
  await Promise.all(sides.map((s) => finished(s.swarm)))
  for (const s of sides) assert.equal(sha256(s.file), t.sha256)
  const fromRunner = sides.reduce((n, s) => n + s.swarm.stats.fromRunner, 0)
  assert.ok(fromRunner <= t.size * 1.1, `the runner sent ${(fromRunner / t.size).toFixed(2)} copies`)
  assert.equal(seeder.uploaded(), fromRunner)
  for (const s of sides) assert.ok(s.swarm.stats.downloaded - s.swarm.stats.fromRunner >= t.size / 3, 'each host got a share from its peers')
  await Promise.all(sides.map((s) => s.swarm.close()))
  await seeder.close()
})

test('the smallest pieces: a host asks the runner for 2 MiB of 16 KiB pieces at once (128 requests) and is served, not dropped', { timeout: 60_000 }, async () => {
  const { t, secret, seeder } = await seeded('small-pieces.bin', 4 * MiB, 16 * 1024)
  const side = await downloader(t, secret, seeder.peerId, 'small-pieces-copy.bin', 0, 1)
  const left: string[] = []
  side.swarm.on('log', (m: string) => /left/.test(m) && left.push(m))
  try {
    side.swarm.connect('127.0.0.1', seeder.port)
    await finishedWithin(side.swarm, 20_000, () => `not done in 20 s; ${left.join('; ') || 'no wire left'}`)
    assert.deepEqual(left, [])
    assert.equal(sha256(side.file), t.sha256)
  } finally {
    await side.swarm.close()
    await seeder.close()
  }
})

test('a seeder started held takes requests but sends no block until sendOn, then the whole file', { timeout: 60_000 }, async () => {
  const { t, secret, seeder } = await seeded('held-source.bin', 8 * MiB, MiB, { held: true })
  const side = await downloader(t, secret, seeder.peerId, 'held.bin', 0, 1)
  try {
    const joined = once(side.swarm, 'wire')
    side.swarm.connect('127.0.0.1', seeder.port)
    await joined
    // On loopback the whole file would be across in this time; nothing may be.
    await new Promise((r) => setTimeout(r, 500))
    assert.equal(seeder.sendingSince(), undefined)
    assert.equal(seeder.uploaded(), 0, 'a held seeder sent blocks')
    assert.equal(side.swarm.stats.downloaded, 0)
    const done = finished(side.swarm)
    seeder.sendOn()
    assert.ok(seeder.sendingSince()! <= Date.now())
    await done
    assert.equal(sha256(side.file), t.sha256)
  } finally {
    await side.swarm.close()
    await seeder.close()
  }
})

test('a piece asked of the runner is taken from a peer that gets it while the runner has not sent it', { timeout: 60_000 }, async () => {
  // A held runner stands for one whose turns are minutes apart: it takes the requests and sends nothing.
  const { source, t, secret, seeder } = await seeded('moved-source.bin', 8 * MiB, MiB, { held: true })
  const side = await downloader(t, secret, seeder.peerId, 'moved.bin', 0, 1)
  const peer = new Swarm({ meta: metaOf(t), seal: secret, peerId: crypto.randomBytes(20), store: new Store({ path: source, length: t.size }), have: Bitfield.full(8) })
  try {
    const joined = once(side.swarm, 'wire')
    side.swarm.connect('127.0.0.1', seeder.port)
    // The host owns every piece: on the runner's wire it asked for the first 2 MiB of them at once.
    await joined
    const peerPort = await peer.listen([0], '127.0.0.1')
    side.swarm.connect('127.0.0.1', peerPort)
    await finishedWithin(side.swarm, 20_000, () => 'not done in 20 s: the pieces asked of the runner were not asked of the peer')
    assert.equal(sha256(side.file), t.sha256)
    assert.equal(seeder.uploaded(), 0, 'the held runner sent blocks')
    assert.equal(side.swarm.stats.fromRunner, 0)
  } finally {
    await Promise.all([side.swarm.close(), peer.close(), seeder.close()])
  }
})

test('the runner is dialled again when it turns a connection away before the handshake, until the file is in', { timeout: 60_000 }, async () => {
  const { t, secret, seeder } = await seeded('redial-source.bin', 4 * MiB, MiB)
  // In front of the seeder: the first two connections are closed at once (a seeder busy with other
  // hosts' handshakes), the next ones go through.
  let accepted = 0
  const front = net.createServer((socket) => {
    if (++accepted <= 2) return socket.destroy()
    const back = net.connect(seeder.port, '127.0.0.1')
    socket.pipe(back).pipe(socket)
    socket.on('error', () => back.destroy())
    back.on('error', () => socket.destroy())
  })
  front.listen(0, '127.0.0.1')
  await once(front, 'listening')
  const side = await downloader(t, secret, seeder.peerId, 'redial.bin', 0, 1)
  try {
    side.swarm.keepDialling('127.0.0.1', (front.address() as net.AddressInfo).port)
    await finishedWithin(side.swarm, 20_000, () => `not done in 20 s; ${accepted} connections reached the runner`)
    assert.equal(sha256(side.file), t.sha256)
    assert.equal(accepted, 3)
  } finally {
    await side.swarm.close()
    await seeder.close()
    front.close()
  }
})

test('a side with the wrong secret gets nothing; a peer serving corrupt blocks is dropped and the download completes', { timeout: 60_000 }, async () => {
  const { t, secret, seeder } = await seeded('bad-source.bin', 12 * MiB, MiB)

  const outsider = await downloader(t, { secret: crypto.randomBytes(32), encrypt: true }, seeder.peerId, 'outsider.bin', 0, 1)
  const refused = new Promise<string>((resolve) => outsider.swarm.once('log', resolve))
  outsider.swarm.connect('127.0.0.1', seeder.port)
  assert.match(await refused, /closed before the handshake: not a peer of this run \(wrong secret\)/)
  assert.equal(outsider.swarm.stats.downloaded, 0)
  assert.equal(fs.statSync(outsider.file).size, 0)
  await outsider.swarm.close()

  // A peer that has the secret and claims every piece, but whose file is junk.
  const junk = randomFile('junk.bin', t.size)
  const liar = new Swarm({ meta: metaOf(t), seal: secret, peerId: crypto.randomBytes(20), store: new Store({ path: junk, length: t.size }), have: Bitfield.full(12) })
  const liarPort = await liar.listen([0], '127.0.0.1')
  const victim = await downloader(t, secret, seeder.peerId, 'victim.bin', 0, 2)
  const dropped = new Promise<string>((resolve) => victim.swarm.on('log', (m) => /dropped peer/.test(m) && resolve(m)))
  // The liar is a peer: the victim asks it for every piece outside its own stripe.
  victim.swarm.connect('127.0.0.1', liarPort)
  victim.swarm.connect('127.0.0.1', seeder.port)
  assert.match(await dropped, /dropped peer 127\.0\.0\.1: 3 pieces from it failed verification/)
  await finished(victim.swarm)
  assert.equal(sha256(victim.file), t.sha256)
  await Promise.all([victim.swarm.close(), liar.close(), seeder.close()])
})
