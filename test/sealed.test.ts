// The sealed swarm on real sshd hosts: a stock BitTorrent peer that knows the info hash but not the run's secret gets no byte of the file, and a capture of the bridge holds none.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import crypto from 'node:crypto'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { afterEach, test } from 'node:test'
import { clusterForFile, type TestFile } from './support/fixture.js'
import { run, type Cluster, type ClusterHost } from './support/cluster.js'
import { cliPath, herd, repoRoot, waitUntil } from './support/herd.js'

const hasTcpdump = spawnSync('sh', ['-c', 'command -v tcpdump'], { timeout: 5000 }).status === 0
const MiB = 1024 * 1024
/** Any 1 KiB run of the file holds a whole 512-byte block that starts at a multiple of 512 in the file. */
const BLOCK = 512
let cluster: Cluster
let work: string
let file: TestFile
let data: Buffer

// 20 Mbit/s links: 24 MiB takes 10 s or more to reach every host, so the stray peers meet a push under way.
const skip = clusterForFile({ hosts: 3, rateMbit: 20, prefix: 'herd-sealed-', file: { name: 'sealed.bin', bytes: 24 * MiB } }, (fx) => {
  ({ cluster, work, file } = fx)
  data = fs.readFileSync(file.path)
})

/** Every process this file starts, killed by PID if a test leaves one behind. */
const started = new Set<ChildProcess>()
const track = (child: ChildProcess): ChildProcess => (started.add(child), child.once('exit', () => started.delete(child)), child)
function kill(pid: number | undefined, sig: NodeJS.Signals): void {
  try {
    if (pid) process.kill(pid, sig)
  } catch {} // already gone
}
afterEach(() => {
  for (const c of started) kill(c.pid, 'SIGKILL')
})

const aliases = () => cluster.hosts.map((h) => h.alias).join(',')

async function assertPushed(dest: string): Promise<void> {
  for (const h of cluster.hosts) assert.equal(await cluster.sha256On(h, dest), file.sha256, `${h.alias}: sha256`)
  for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
}

/** Finds 1 KiB runs of the file in other bytes: looks up every offset's first 3 bytes in a bitmap of the blocks' first 3 bytes, then compares 512. */
function runFinder(file: Buffer): (hay: Buffer) => { at: number; fileOffset: number } | undefined {
  const seen = new Uint8Array(1 << 21)
  const byKey = new Map<number, number[]>()
  const key = (b: Buffer, i: number) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16)
  for (let off = 0; off + BLOCK <= file.length; off += BLOCK) {
    const k = key(file, off)
    seen[k >>> 3]! |= 1 << (k & 7)
    byKey.set(k, [...(byKey.get(k) ?? []), off])
  }
  return (hay) => {
    for (let i = 0; i + BLOCK <= hay.length; i++) {
      const k = key(hay, i)
      if (!(seen[k >>> 3]! & (1 << (k & 7)))) continue
      for (const off of byKey.get(k) ?? []) if (hay.compare(file, off, off + BLOCK, i, i + BLOCK) === 0) return { at: i, fileOffset: off }
    }
    return undefined
  }
}

/** What this test drives of bittorrent-protocol's Wire (a stock BitTorrent peer, as webtorrent uses it). */
interface StockWire {
  peerChoking: boolean
  handshake(infoHash: string, peerId: string, extensions?: { dht?: boolean }): void
  interested(): void
  unchoke(): void
  request(index: number, offset: number, length: number, cb: (err: Error | null) => void): void
  write(bytes: Uint8Array): boolean
  destroy(): void
  on(event: 'data', fn: (bytes: Uint8Array) => void): this
  on(event: 'handshake', fn: (infoHash: string) => void): this
  on(event: 'piece', fn: (index: number) => void): this
  on(event: 'request', fn: (index: number, offset: number, length: number, respond: (err: Error | null, block?: Uint8Array) => void) => void): this
  on(event: 'error', fn: (err: Error) => void): this
}
async function stockWire(): Promise<StockWire> {
  const { default: Wire } = (await import('bittorrent-protocol')) as unknown as { default: new () => StockWire }
  return new Wire()
}

/** Bytes both ways between a socket and a stock wire (no pipe: the wire's types stay this file's). */
function join(socket: net.Socket, wire: StockWire): void {
  socket.on('data', (d: Buffer) => wire.write(d))
  wire.on('data', (d) => void (socket.destroyed || socket.write(d)))
  wire.on('error', () => socket.destroy())
}

/**
 * A TCP connection made inside a namespace and handed to this process over the IPC channel, so the stock
 * wire runs here with its events. The child connects and exits; nothing is read before the hand-over, and
 * neither a BitTorrent nor a herd listener speaks before the dialer has.
 */
const CONNECT = `const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]);
s.on('connect', () => process.send('connected', s)); s.on('error', (e) => process.send(String(e.code || e.message)));
s.setTimeout(10000, () => process.send('connect timed out'));
process.on('disconnect', () => process.exit(0));`
function connectIn(netns: string, host: string, port: number): Promise<net.Socket> {
  const child = track(spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', CONNECT, host, String(port)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }))
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d))
  return new Promise((resolve, reject) => {
    child.once('message', (msg, handle) => {
      child.disconnect()
      if (msg === 'connected' && handle instanceof net.Socket) resolve(handle)
      else reject(new Error(`connect to ${host}:${port} from ${netns}: ${String(msg)}`))
    })
    child.once('exit', (code) => reject(new Error(`connect to ${host}:${port} from ${netns}: helper exited ${code}: ${stderr}`)))
  })
}

interface StrayResult {
  handshake: boolean
  pieces: number
  /** how it ended: closed by the other side, every piece asked for arrived, or limitMs passed */
  closed: 'remote' | 'served' | 'timeout'
  received: Buffer
  sent: number
  ms: number
}

/**
 * A stock BitTorrent peer on `socket`: the handshake with the info hash, interested, and requests for
 * `pieces` sent at once (a hostile peer does not wait to be unchoked). Ends when the other side closes,
 * when every piece arrived, or after limitMs.
 */
async function strayPeer(socket: net.Socket, infoHash: string, pieces: number[], limitMs = 15_000): Promise<StrayResult> {
  const wire = await stockWire()
  const began = Date.now()
  const received: Buffer[] = []
  const r = { handshake: false, pieces: 0 }
  socket.on('data', (d: Buffer) => received.push(d))
  join(socket, wire)
  const closed = await new Promise<StrayResult['closed']>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), limitMs)
    const byRemote = () => (clearTimeout(timer), resolve('remote'))
    wire.on('handshake', () => (r.handshake = true))
    wire.on('piece', () => ++r.pieces === pieces.length && (clearTimeout(timer), resolve('served')))
    socket.once('end', byRemote) // FIN
    socket.on('error', byRemote) // RST (or a write into a connection the other side already closed)
    socket.once('close', byRemote)
    wire.handshake(infoHash, crypto.randomBytes(20).toString('hex'), { dht: false })
    wire.interested()
    wire.peerChoking = false
    for (const i of pieces) wire.request(i, 0, 16 * 1024, () => undefined)
  })
  const sent = socket.bytesWritten
  socket.destroy()
  wire.destroy()
  return { ...r, closed, received: Buffer.concat(received), sent, ms: Date.now() - began }
}

/** herd started detached in the runner namespace, its stderr read as it runs. */
function startHerd(args: string[]): { stderr: () => string; running: () => boolean; done: Promise<{ code: number | null; stderr: string }> } {
  const child = track(cluster.spawnInRunner(['node', cliPath, ...args, '--json'], { cwd: repoRoot }))
  let stderr = ''
  child.stdout!.resume()
  child.stderr!.on('data', (d: Buffer) => (stderr += d))
  child.stdin!.end()
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })))
  return { stderr: () => stderr, running: () => child.exitCode === null && child.signalCode === null, done }
}

/** The port herd's agent on `h` listens on for peers, and its PID: ss in the host's namespace, the socket's owner titled herd-agent. */
async function agentListener(h: ClusterHost): Promise<{ port: number; pid: number }> {
  let found = { port: 0, pid: 0 }
  await waitUntil(`the agent on ${h.alias} to listen`, async () => {
    const r = await run('ip', ['netns', 'exec', h.netns, 'ss', '-Htlnp'], { timeoutMs: 10_000 })
    for (const m of r.stdout.matchAll(/:(\d+)\s+\S+\s+users:\(\("[^"]*",pid=(\d+),/g)) {
      let cmdline = ''
      try {
        cmdline = fs.readFileSync(`/proc/${m[2]}/cmdline`, 'utf8').replaceAll('\0', ' ')
      } catch {} // exited meanwhile
      if (/^herd-agent\b|agent-[0-9a-f]+\.mjs/.test(cmdline)) found = { port: Number(m[1]), pid: Number(m[2]) }
    }
    return found.port > 0
  })
  return found
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

test('a stock BitTorrent peer that knows the info hash gets no byte from the seeder or any agent, and the push goes on', { skip, timeout: 180_000 }, async (t) => {
  const diagnostic = (line: string) => t.diagnostic(line)
  const pieceLength = 256 * 1024
  const asked = [0, 1, 2, Math.floor(data.length / pieceLength) - 1]
  const find = runFinder(data)

  // Positive control: the same stray peer, against a stock peer that serves the file, gets pieces and the finder sees them.
  const stock = net.createServer((socket) => void stockWire().then((wire) => {
    join(socket, wire)
    wire.on('handshake', (infoHash) => (wire.handshake(infoHash, crypto.randomBytes(20).toString('hex')), wire.unchoke()))
    wire.on('request', (i, offset, length, respond) => respond(null, data.subarray(i * pieceLength + offset, i * pieceLength + offset + length)))
  }))
  await new Promise<void>((resolve) => stock.listen(0, '127.0.0.1', resolve))
  const control = await strayPeer(net.connect((stock.address() as net.AddressInfo).port, '127.0.0.1'), crypto.randomBytes(20).toString('hex'), asked, 5000)
  stock.close()
  assert.ok(control.handshake && control.pieces === asked.length, `the control got ${control.pieces} pieces, handshake ${control.handshake}`)
  assert.ok(find(control.received), 'the finder sees the file in what the control received')

  const dest = '/srv/stray.bin'
  const push = startHerd([file.path, dest, '--hostlist', aliases()])
  await waitUntil('the swarm line on herd\'s stderr', () => /seeder on port \d+, info hash [0-9a-f]{40}/.test(push.stderr()), 60_000)
  const [, seederPort, infoHash] = /seeder on port (\d+), info hash ([0-9a-f]{40})/.exec(push.stderr())!
  // The seeder from a host's namespace (another machine on the LAN), the agents from the runner's.
  const seeder = { name: 'the seeder', netns: cluster.hosts[0]!.netns, host: cluster.runnerAddress, port: Number(seederPort) }
  /**
   * A stray connection to each agent. An agent that exited between ss and the connect (herd replaced it:
   * CI saw ECONNREFUSED twice in a few hundred runs, herd's stderr unknown) is looked up again, said
   * in the test's output; a refusal by a live agent fails with herd's stderr and the host's listeners.
   */
  const agentTarget = async (h: ClusterHost): Promise<{ name: string; host: string; port: number; socket: net.Socket }> => {
    for (let tries = 1; ; tries++) {
      const { port, pid } = await agentListener(h)
      const name = `the agent on ${h.alias}`
      try {
        return { name, host: h.address, port, socket: await connectIn(cluster.runnerNetns, h.address, port) }
      } catch (err) {
        if (alive(pid) || tries >= 3) {
          const ss = await run('ip', ['netns', 'exec', h.netns, 'ss', '-Htlnp'], { timeoutMs: 10_000 })
          throw new Error(`${(err as Error).message} (agent pid ${pid} ${alive(pid) ? 'alive' : 'gone'})\nlisteners on ${h.alias}:\n${ss.stdout}herd's stderr so far:\n${push.stderr()}`)
        }
        diagnostic(`${name} (pid ${pid}, port ${port}) exited before the stray peer's connect; looking it up again`)
      }
    }
  }
  const stray = async (target: Promise<{ name: string; host: string; port: number; socket: net.Socket }>) => {
    const t = await target
    return { ...t, r: await strayPeer(t.socket, infoHash!, asked) }
  }
  const results = await Promise.all([
    stray(connectIn(seeder.netns, seeder.host, seeder.port).then((socket) => ({ ...seeder, socket }))),
    ...cluster.hosts.map((h) => stray(agentTarget(h))),
  ])
  assert.ok(push.running(), 'the push was still under way when every stray peer was done')
  for (const { name, host, port, r } of results) {
    const what = `${name} (${host}:${port}): ${r.received.length} bytes back, closed by ${r.closed} after ${r.ms} ms`
    assert.ok(r.sent >= 68, `${what}: the stray peer's handshake did not go out (${r.sent} bytes sent)`)
    assert.equal(r.handshake, false, `${what}: answered the BitTorrent handshake`)
    assert.equal(r.pieces, 0, `${what}: sent pieces`)
    assert.equal(find(r.received), undefined, `${what}: sent bytes of the file`)
  }

  const r = await push.done
  assert.equal(r.code, 0, r.stderr)
  await assertPushed(dest)
})

/** Captures every frame crossing the cluster's bridge (br0, in the bridge's namespace) while `during` runs. */
async function captureBridge(name: string, during: () => Promise<void>): Promise<{ bytes: Buffer; stats: string }> {
  const pcap = path.join(work, name)
  // Whole frames (-s 0), each written out as it is read (-U), so the marker below tells when the capture has caught
  // up. Not --immediate-mode: libpcap then gives each frame a snaplen-sized slot and the 32 MiB ring drops frames.
  const argv = ['tcpdump', '-i', 'br0', '-s', '0', '-B', '32768', '-U', '-Z', 'root', '-w', pcap]
  const child = track(spawn('ip', ['netns', 'exec', cluster.bridgeNetns, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] }))
  let stderr = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => ((stderr += d), /listening on br0/.test(stderr) && resolve()))
    void exited.then(() => reject(new Error(`tcpdump exited: ${stderr}`)))
  })
  try {
    await during()
    // Frames are captured in order: once a marker sent after the transfer is in the file, so is all of the transfer.
    const marker = crypto.randomBytes(16).toString('hex')
    const h = cluster.hosts[0]!
    const udp = `require('node:dgram').createSocket('udp4').send(process.argv[1], 9, process.argv[2], (e) => process.exit(e ? 1 : 0))`
    assert.equal((await cluster.runInRunner([process.execPath, '-e', udp, marker, h.address], { timeoutMs: 10_000 })).code, 0, 'the marker was sent')
    await waitUntil('the marker in the capture', () => fs.readFileSync(pcap).includes(marker), 30_000)
  } finally {
    // SIGINT: tcpdump flushes the file and prints its counts (ip netns exec execs, so the PID is tcpdump's).
    kill(child.pid, 'SIGINT')
    const killer = setTimeout(() => kill(child.pid, 'SIGKILL'), 5000)
    await exited
    clearTimeout(killer)
  }
  const bytes = fs.readFileSync(pcap)
  fs.rmSync(pcap)
  return { bytes, stats: stderr.replace(/\s+/g, ' ').trim() }
}

/** The file's first `bytes` in plain TCP from the runner to a host: what a capture holds when nothing seals the stream. */
async function plainTransfer(h: ClusterHost, bytes: number): Promise<void> {
  const receive = `require('node:net').createServer((s) => { s.resume(); s.on('end', () => process.exit(0)) }).listen(0, process.argv[1], function () { console.log(this.address().port) })`
  const child = track(spawn('ip', ['netns', 'exec', h.netns, process.execPath, '-e', receive, h.address], { stdio: ['ignore', 'pipe', 'pipe'] }))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))
    void exited.then((code) => reject(new Error(`the receiver exited ${code}`)))
  })
  const send = `const s = require('node:net').connect(Number(process.argv[2]), process.argv[1], () => require('node:fs').createReadStream(process.argv[3], { end: Number(process.argv[4]) - 1 }).pipe(s))`
  const sent = await cluster.runInRunner([process.execPath, '-e', send, h.address, port, file.path, String(bytes)], { timeoutMs: 30_000 })
  assert.equal(sent.code, 0, `plain sender: ${sent.stderr}`)
  assert.equal(await exited, 0, 'the receiver got the whole stream')
}

test('a capture on the cluster\'s bridge during a push holds no 1 KiB run of the file', { skip: skip || (hasTcpdump ? false : 'tcpdump not found (scripts/setup.sh installs it)'), timeout: 180_000 }, async () => {
  const find = runFinder(data)
  // Positive control: plain TCP across the same bridge, captured the same way, shows the file.
  const plain = await captureBridge('plain.pcap', () => plainTransfer(cluster.hosts[0]!, 2 * MiB))
  assert.ok(plain.bytes.length >= 2 * MiB, `the plain capture holds ${plain.bytes.length} bytes (${plain.stats})`)
  assert.ok(find(plain.bytes), 'the finder sees the file in a capture of plain TCP')

  const dest = '/srv/captured.bin'
  const sealed = await captureBridge('sealed.pcap', async () => {
    const r = await herd(cluster, [file.path, dest, '--hostlist', aliases()])
    assert.equal(r.code, 0, r.stderr)
  })
  await assertPushed(dest)
  assert.match(sealed.stats, /\b0 packets dropped by kernel/, 'tcpdump missed frames: the capture is not the whole transfer')
  assert.ok(sealed.bytes.length >= data.length, `the capture holds ${sealed.bytes.length} bytes, less than the file: the transfer did not cross br0 (${sealed.stats})`)
  const leak = find(sealed.bytes)
  assert.equal(leak, undefined, `the capture holds the file's bytes at ${leak?.at} (file offset ${leak?.fileOffset})`)

  // Positive control: a 1 KiB run from an unaligned offset, planted in the capture's own bytes, is found.
  const from = 5 * MiB + 217
  const middle = 1 * MiB + 3
  const planted = Buffer.concat([sealed.bytes.subarray(0, middle), data.subarray(from, from + 1024), sealed.bytes.subarray(middle, 2 * MiB)])
  const hit = find(planted)
  assert.ok(hit && hit.at >= middle && hit.at + BLOCK <= middle + 1024, `the planted run was not found where it is: ${JSON.stringify(hit)}`)
  assert.equal(hit.fileOffset, Math.ceil(from / BLOCK) * BLOCK)
})

test('with --no-encryption the same capture does show the file: the opt-out does what it says, and still delivers', { skip: skip || (hasTcpdump ? false : 'tcpdump not found (scripts/setup.sh installs it)'), timeout: 180_000 }, async () => {
  const dest = '/srv/plain.bin'
  let stderr = ''
  const plain = await captureBridge('opt-out.pcap', async () => {
    const r = await herd(cluster, [file.path, dest, '--hostlist', aliases(), '--no-encryption'])
    assert.equal(r.code, 0, r.stderr)
    stderr = r.stderr
  })
  await assertPushed(dest)
  assert.match(stderr, /NOT encrypted \(--no-encryption\)/, 'the run says it is not encrypted')
  assert.ok(runFinder(data)(plain.bytes), 'the file travelled in the clear')
})
