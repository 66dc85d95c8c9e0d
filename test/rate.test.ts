// --limit-rate without hosts: the rate as curl writes it, the token bucket on a clock the test moves, and
// a limited wire and seeder on loopback that stop while the bucket is dry and go on once it refills.
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { after, test } from 'node:test'
import { RateLimit } from '../src/engine/rate.js'
import { Wire } from '../src/engine/wire.js'
import { Store } from '../src/engine/store.js'
import { Bitfield } from '../src/engine/bitfield.js'
import { Swarm } from '../src/engine/swarm.js'
import { hashFile } from '../src/core/swarm/torrent.js'
import { PlanError, makePlan, parseRate } from '../src/core/plan.js'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-rate-'))
// The runner keeps hashes under ~/.cache (src/core/swarm/hash-cache.ts): this test's own HOME, removed with it.
process.env.HOME = work
after(() => fs.rmSync(work, { recursive: true, force: true }))
const KiB = 1024
const MiB = 1024 * KiB

/** A clock in milliseconds that moves only when the test says so. */
function manualClock(): { now: () => number; advance(ms: number): void } {
  let t = 1000
  return { now: () => t, advance: (ms) => void (t += ms) }
}

/** Resolves after `ms` of real time (keeps the event loop alive while unref'd timers run). */
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await pause(10)
  }
}

test('rates as curl writes them: bytes, or K, M, G in either case, 1024-based; 0 is no limit; anything else is refused naming --limit-rate', () => {
  assert.equal(parseRate('1000'), 1000)
  assert.equal(parseRate('200K'), 200 * KiB)
  assert.equal(parseRate('200k'), 200 * KiB)
  assert.equal(parseRate('5M'), 5 * MiB)
  assert.equal(parseRate(' 50m '), 50 * MiB)
  assert.equal(parseRate('1G'), 1024 * MiB)
  assert.equal(parseRate('2g'), 2048 * MiB)
  assert.equal(parseRate('0'), 0)
  for (const bad of ['5X', '', 'M', '-5M', '1.5M', '5 M', '5MB', '5MiB', '0x10', '5M5', '99999999999999999999G']) {
    assert.throws(() => parseRate(bad), (err: unknown) => {
      assert.ok(err instanceof PlanError, `${bad}: a PlanError`)
      assert.equal(err.input, '--limit-rate')
      assert.match(err.message, /^--limit-rate: '.*' is not a rate; give bytes per second as a whole number with an optional K, M or G \(1024-based, as curl\), e\.g\. 50M or 500K$/)
      return true
    }, bad)
  }
})

test('the plan: a limit takes bytes per second, 0 or empty none; one so slow that hosts would stall first names --stall-timeout and the fix', () => {
  const file = path.join(work, 'plan.bin')
  fs.writeFileSync(file, crypto.randomBytes(64 * KiB))
  // The plan wants some key to offer: a HOME of the test's own with one (only its presence counts), no agent.
  const home = path.join(work, 'home')
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true })
  fs.writeFileSync(path.join(home, '.ssh', 'id_ed25519'), 'a key file\n', { mode: 0o600 })
  const sshConfig = path.join(work, 'ssh_config')
  fs.writeFileSync(sshConfig, '')
  process.env.HOME = home
  delete process.env.SSH_AUTH_SOCK
  const base = { file, destination: '/srv/plan.bin', hostList: 'a,b,c', sshConfig }
  assert.equal(makePlan({ ...base, limitRate: '5M' }).limitRate, 5 * MiB)
  assert.equal(makePlan({ ...base, limitRate: '0' }).limitRate, undefined)
  assert.equal(makePlan({ ...base, limitRate: '' }).limitRate, undefined)
  assert.equal(makePlan(base).limitRate, undefined)
  assert.throws(() => makePlan({ ...base, limitRate: '5X' }), { name: 'Error', message: /^--limit-rate: '5X' is not a rate/ })
  // 3 hosts share the runner's 1 KiB/s: a block each (16 KiB: the 64 KiB file comes in pieces that give
  // every host two) takes 2 × 4 × 16 s, past the default 60 s.
  assert.throws(() => makePlan({ ...base, limitRate: '1K' }), { message: /^--limit-rate: at 1K a host may wait 128 s for data while 3 hosts share the runner, longer than --stall-timeout 60; raise --stall-timeout to 128 or the rate$/ })
  assert.equal(makePlan({ ...base, limitRate: '1K', stallTimeout: '128' }).limitRate, KiB)
})

test('the bucket: a tenth of a second of burst, spending may overdraw it, and it reopens once the debt is paid at the rate', () => {
  const clock = manualClock()
  const bucket = new RateLimit(1000, clock.now)
  assert.equal(bucket.open, true, 'full at the start')
  assert.equal(bucket.spend(60), true, '40 of the 100 bytes of burst left')
  assert.equal(bucket.spend(1040), false, 'overdrawn by 1000')
  assert.equal(bucket.open, false)
  clock.advance(999)
  assert.equal(bucket.open, false, 'one byte short')
  clock.advance(2)
  assert.equal(bucket.open, true)
  clock.advance(60_000)
  assert.equal(bucket.spend(100), false, 'idle time saves no more than the burst')
  assert.throws(() => new RateLimit(0), RangeError)
})

test('the bucket: over ten seconds, blocks of any size pass at the rate, give or take the burst and one block', () => {
  for (const block of [1, 700, 64 * KiB, MiB]) {
    const clock = manualClock()
    const rate = 100 * KiB
    const bucket = new RateLimit(rate, clock.now)
    let sent = 0
    for (let ms = 0; ms < 10_000; ms++, clock.advance(1)) {
      while (bucket.open) {
        bucket.spend(block)
        sent += block
      }
    }
    assert.ok(sent >= 10 * rate - block, `${block}-byte blocks: ${sent} bytes is below the rate`)
    assert.ok(sent <= 10 * rate + rate / 10 + block, `${block}-byte blocks: ${sent} bytes is above the rate`)
  }
})

test('the bucket wakes its waiters, in the order they came, only once the clock has paid the debt', async () => {
  const clock = manualClock()
  const bucket = new RateLimit(MiB, clock.now)
  // 10 KiB past the burst: the bucket looks again every 10 ms or so.
  bucket.spend(110 * KiB)
  const woken: string[] = []
  bucket.whenOpen(() => woken.push('first'))
  bucket.whenOpen(() => woken.push('second'))
  await pause(100)
  assert.equal(woken.length, 0, 'the clock has not moved: still in debt')
  clock.advance(20)
  await until('the waiters to wake', () => woken.length === 2)
  assert.deepEqual(woken, ['first', 'second'])
  bucket.whenOpen(() => woken.push('open now'))
  await until('a waiter on an open bucket to wake', () => woken.length === 3)
})

test('a wire under a dry download limit stops reading its socket (the sender backs up) and reads on once tokens return', async () => {
  const clock = manualClock()
  const limit = new RateLimit(10 * MiB, clock.now)
  const secret = { secret: crypto.randomBytes(32), encrypt: true }
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection') as Promise<[net.Socket]>
  const sender = new Wire(net.connect((server.address() as net.AddressInfo).port, '127.0.0.1'), 'dialer', secret, crypto.randomBytes(20))
  const [incoming] = await accepted
  const receiver = new Wire(incoming, 'listener', secret, crypto.randomBytes(20), { download: limit })
  try {
    await Promise.all([once(sender, 'ready'), once(receiver, 'ready')])
    const blocks: Buffer[] = []
    receiver.on('block', (_i, _o, parts) => blocks.push(Buffer.concat(parts)))
    const sent = Array.from({ length: 32 }, () => crypto.randomBytes(MiB))
    sent.forEach((b, i) => sender.block(i, 0, [b]))
    // 1 MiB of burst: a read overdraws it, and the socket is read no more while the clock stands.
    await until('the receiving socket to pause', () => incoming.isPaused())
    await pause(300)
    assert.ok(blocks.length <= 1, `${blocks.length} blocks got through a dry bucket`)
    // The kernel's buffers are full: the rest waits in the sender's socket.
    assert.ok(sender.queued > 16 * MiB, `the sender holds the rest (${sender.queued} bytes queued)`)
    const ticker = setInterval(() => clock.advance(1000), 10)
    try {
      await until('every block', () => blocks.length === 32, 30_000)
    } finally {
      clearInterval(ticker)
    }
    assert.deepEqual(blocks, sent, 'every block whole and in order')
  } finally {
    sender.destroy('done')
    receiver.destroy('done')
    server.close()
  }
})

test('a seeder under a dry upload limit sends no further block until tokens return, then the whole file', { timeout: 60_000 }, async () => {
  const source = path.join(work, 'seeded.bin')
  fs.writeFileSync(source, crypto.randomBytes(6 * MiB))
  const t = await hashFile(source, { pieceLength: MiB })
  const seal = { secret: crypto.randomBytes(32), encrypt: true }
  const clock = manualClock()
  const seederId = crypto.randomBytes(20)
  const seeder = new Swarm({
    meta: { infoHash: Buffer.from(t.infoHash, 'hex'), pieceLength: t.pieceLength, length: t.size, pieceHashes: t.pieceHashes },
    seal,
    peerId: seederId,
    store: new Store({ path: source, length: t.size }),
    have: Bitfield.full(6),
    // A 1 MiB burst: the first block empties it.
    limits: { upload: new RateLimit(10 * MiB, clock.now) },
  })
  const port = await seeder.listen([0], '127.0.0.1')
  const copy = path.join(work, 'copy.bin')
  fs.writeFileSync(copy, '')
  const host = new Swarm({
    meta: { infoHash: Buffer.from(t.infoHash, 'hex'), pieceLength: t.pieceLength, length: t.size, pieceHashes: t.pieceHashes },
    seal,
    peerId: crypto.randomBytes(20),
    store: new Store({ path: copy, length: t.size, writable: true }),
    have: new Bitfield(6),
    stripe: { index: 0, of: 1 },
    runnerId: seederId.toString('hex'),
  })
  try {
    host.connect('127.0.0.1', port)
    await until('the first block', () => host.stats.downloaded === MiB)
    await pause(300)
    assert.equal(host.stats.downloaded, MiB, 'one block emptied the bucket; nothing more went while the clock stood')
    assert.equal(seeder.uploaded, MiB)
    const done = once(host, 'done')
    const ticker = setInterval(() => clock.advance(100), 10)
    try {
      await done
    } finally {
      clearInterval(ticker)
    }
    assert.equal(crypto.createHash('sha256').update(fs.readFileSync(copy)).digest('hex'), t.sha256)
  } finally {
    await host.close()
    await seeder.close()
  }
})
