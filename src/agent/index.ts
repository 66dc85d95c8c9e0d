// herd's agent: runs on each host under plain `node`, fetches the file from the swarm into a temporary
// file beside the destination, verifies it, renames it into place, and seeds until the runner releases it.
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import WebTorrent, { type Torrent, type Wire } from 'webtorrent'
import {
  AGENT_EXIT,
  ALIVE_SECONDS,
  PROTOCOL_VERSION,
  encodeLine,
  lineReader,
  type AgentErrorCode,
  type AgentEvent,
  type StartMessage,
} from '../core/protocol.js'
import { FileStore } from '../core/swarm/file-store.js'
import { boundRequestsInFlight, privateClientOptions } from '../core/swarm/client-options.js'
import { joinReceivedDataOncePerMessage } from './wire-buffer.js'

/** A failure with a stable cause the runner can explain. */
class AgentError extends Error {
  constructor(readonly code: AgentErrorCode, message: string) {
    super(message)
  }
}

function send(event: AgentEvent): void {
  process.stdout.write(encodeLine(event))
}

function log(message: string): void {
  send({ t: 'log', message })
}

/** Temporary file beside the destination, named by content so a re-run or retry resumes it. */
export function partialPathFor(destination: string, sha256: string): string {
  return path.join(path.dirname(destination), `.${path.basename(destination)}.herd-${sha256.slice(0, 16)}.part`)
}

/** Maps a filesystem error on the destination side to a cause and a fix. */
function fsFailure(err: NodeJS.ErrnoException, what: string): AgentError {
  switch (err.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new AgentError('no-space', `no space left for ${what} (${err.code}); free space on that filesystem or choose another destination`)
    case 'EROFS':
      return new AgentError('read-only-fs', `${what} is on a read-only filesystem (EROFS); choose another destination`)
    case 'EACCES':
    case 'EPERM':
      return new AgentError('not-writable', `${what} is not writable by this user (${err.code}); fix its permissions or connect as a user who may write it`)
    case 'ENOENT':
      return new AgentError('no-folder', `${what} does not exist (ENOENT); create the folder first (herd does not create folders)`)
    case 'EISDIR':
      return new AgentError('not-a-file', `${what} is a directory (EISDIR); give the full path of the file`)
    default:
      return new AgentError('io', `${what}: ${err.message}`)
  }
}

/** SHA-256 of a file through one reused buffer: a stream's fresh 4 MiB per read piles up until GC. */
async function sha256Of(file: string): Promise<string> {
  const hash = crypto.createHash('sha256')
  const buf = Buffer.allocUnsafe(1024 * 1024)
  const fh = await fs.promises.open(file, 'r')
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      hash.update(buf.subarray(0, bytesRead))
    }
  } finally {
    await fh.close()
  }
  return hash.digest('hex')
}

/** Checks what can be checked before any byte moves: the folder, the destination, write access. */
async function preflight(start: StartMessage): Promise<'identical' | 'fetch'> {
  const dir = path.dirname(start.destination)
  let dirStat: fs.Stats
  try {
    dirStat = await fs.promises.stat(dir)
  } catch (err) {
    throw fsFailure(err as NodeJS.ErrnoException, `folder ${dir}`)
  }
  if (!dirStat.isDirectory()) throw new AgentError('no-folder', `${dir} is not a folder; choose a destination inside an existing folder`)
  let destStat: fs.Stats | undefined
  try {
    destStat = await fs.promises.stat(start.destination)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsFailure(err as NodeJS.ErrnoException, start.destination)
  }
  if (destStat && !destStat.isFile()) throw new AgentError('not-a-file', `${start.destination} exists and is not a regular file; remove it or choose another destination`)
  try {
    await fs.promises.access(dir, fs.constants.W_OK)
  } catch (err) {
    throw fsFailure(err as NodeJS.ErrnoException, `folder ${dir}`)
  }
  if (destStat && destStat.size === start.size && (await sha256Of(start.destination)) === start.sha256) {
    if ((destStat.mode & 0o7777) !== start.mode) await fs.promises.chmod(start.destination, start.mode)
    return 'identical'
  }
  return 'fetch'
}

/** Refuses to start a download that can't fit, rather than fill the filesystem and fail at the end. */
async function checkFreeSpace(start: StartMessage, partial: string): Promise<void> {
  const dir = path.dirname(start.destination)
  let free: number
  try {
    const fsInfo = await fs.promises.statfs(dir)
    free = (process.getuid?.() === 0 ? fsInfo.bfree : fsInfo.bavail) * fsInfo.bsize
  } catch {
    return // not knowable here (old kernel, odd filesystem): the writes will tell
  }
  const resumed = await fs.promises.stat(partial).then((st) => st.blocks * 512, () => 0)
  const needed = start.size - Math.min(resumed, start.size)
  if (needed > free) {
    throw new AgentError('no-space', `no space left for ${start.destination}: ${needed} more bytes needed in ${dir}, ${free} free; free space on that filesystem or choose another destination`)
  }
}

/** Removes temporary files of earlier runs for this destination that hold other content. */
async function removeStalePartials(destination: string, keep: string): Promise<void> {
  const dir = path.dirname(destination)
  const prefix = `.${path.basename(destination)}.herd-`
  let names: string[] = []
  try {
    names = await fs.promises.readdir(dir)
  } catch {
    return
  }
  for (const name of names) {
    const full = path.join(dir, name)
    if (name.startsWith(prefix) && name.endsWith('.part') && full !== keep) {
      await fs.promises.rm(full, { force: true })
      log(`removed stale temporary file ${full}`)
    }
  }
}

/** One agent per destination: a leftover agent from a dropped connection is stopped before we start. */
async function takeDestinationLock(destination: string): Promise<string> {
  const lock = path.resolve(`lock-${crypto.createHash('sha1').update(destination).digest('hex').slice(0, 16)}.pid`)
  try {
    const pid = Number((await fs.promises.readFile(lock, 'utf8')).trim())
    if (pid > 0 && pid !== process.pid) {
      const cmdline = await fs.promises.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
      // An agent's command line is its title (main sets it), or the bootstrap naming agent-<hash>.mjs.
      if (cmdline.split('\0')[0] === 'herd-agent' || cmdline.includes('agent-')) {
        log(`stopping an earlier agent (pid ${pid}) still running for ${destination}`)
        try { process.kill(pid, 'SIGTERM') } catch {}
        for (let i = 0; i < 50 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100))
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
    }
  } catch {}
  await fs.promises.writeFile(lock, String(process.pid), { mode: 0o600 })
  return lock
}

/** Moves the verified temporary file into place: mode, fsync, rename, fsync of the folder. */
async function placeFile(partial: string, start: StartMessage): Promise<void> {
  const actual = await sha256Of(partial)
  if (actual !== start.sha256) throw new AgentError('checksum', `the downloaded file's SHA-256 ${actual} differs from the runner's ${start.sha256}; the local file may have changed during the run`)
  const fh = await fs.promises.open(partial, 'r+')
  try {
    await fh.chmod(start.mode)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await fs.promises.rename(partial, start.destination)
  const dirHandle = await fs.promises.open(path.dirname(start.destination), 'r')
  try {
    await dirHandle.sync()
  } finally {
    await dirHandle.close()
  }
}

/** A peer's address in one form, whether it connected to us (`::ffff:10.0.0.5`) or we to it (`10.0.0.5`). */
function peerAddress(wire: Wire): string {
  return wire.remoteAddress.replace(/^::ffff:(?=\d+\.)/, '')
}

/**
 * Recently written pieces kept in memory to serve peers' requests: with 8 hosts at 100 Mbit/s about a
 * third of the blocks a host uploads come from there instead of a file read each.
 */
const RECENT_PIECES_BYTES = 8 * 1024 * 1024

/** Bytes of failed pieces kept as evidence at most (their blocks are compared once the piece verifies). */
const EVIDENCE_BYTES_MAX = 64 * 1024 * 1024

/**
 * Drops peers that send corrupt data; gives up when nothing good arrives. A piece often mixes blocks
 * from several peers, so a failed piece only blames its sender when one peer sent all of it; otherwise its
 * blocks are kept until the piece verifies from fresh blocks, and the peers whose blocks differed are blamed.
 */
function guardAgainstBadPeers(torrent: Torrent, fail: (err: AgentError) => void, isRunner: (wire: Wire) => boolean): void {
  type Blocks = Map<number, { wire: Wire; data: Uint8Array }>
  const inFlight = new Map<number, Blocks>()
  const evidence = new Map<number, Blocks>()
  let evidenceBytes = 0
  const strikes = new Map<string, number>()
  const banned = new Set<string>()
  let failures = 0
  const size = (blocks: Blocks) => [...blocks.values()].reduce((n, b) => n + b.data.length, 0)
  const blame = (wire: Wire) => {
    const key = peerAddress(wire)
    if (banned.has(key) || isRunner(wire)) return
    const n = (strikes.get(key) ?? 0) + 1
    strikes.set(key, n)
    if (n >= 3) {
      banned.add(key)
      log(`dropped peer ${key}: ${n} pieces from it failed verification`)
      for (const w of torrent.wires) if (peerAddress(w) === key) w.destroy()
    }
  }
  torrent.on('wire', (wire: Wire) => {
    if (banned.has(peerAddress(wire))) return wire.destroy()
    wire.on('piece', (index: number, offset: number, data: Uint8Array) => {
      if (torrent.bitfield.get(index)) return // a late duplicate of a verified piece
      let blocks = inFlight.get(index)
      if (!blocks) inFlight.set(index, (blocks = new Map()))
      // The first block for an offset is the one webtorrent keeps.
      if (!blocks.has(offset)) blocks.set(offset, { wire, data })
    })
  })
  torrent.on('verified', (index: number) => {
    const good = inFlight.get(index)
    inFlight.delete(index)
    const bad = evidence.get(index)
    if (!bad) return
    evidence.delete(index)
    evidenceBytes -= size(bad)
    const blamed = new Set<string>()
    for (const [offset, block] of bad) {
      const right = good?.get(offset)
      if (right && Buffer.compare(right.data, block.data) !== 0 && !blamed.has(peerAddress(block.wire))) {
        blamed.add(peerAddress(block.wire))
        blame(block.wire)
      }
    }
  })
  torrent.on('warning', (err: Error) => {
    const m = /^Piece (\d+) failed verification/.exec(err.message)
    if (!m) return
    failures++
    const index = Number(m[1])
    const blocks = inFlight.get(index) ?? new Map()
    inFlight.delete(index)
    const senders = new Set([...blocks.values()].map((b) => peerAddress(b.wire)))
    if (senders.size === 1) blame([...blocks.values()][0]!.wire)
    else if (senders.size > 1 && !evidence.has(index) && evidenceBytes + size(blocks) <= EVIDENCE_BYTES_MAX) {
      evidence.set(index, blocks)
      evidenceBytes += size(blocks)
    }
    if (failures > Math.max(200, torrent.pieces.length)) {
      fail(new AgentError('bad-peers', `${failures} pieces failed verification; the swarm keeps sending corrupt data`))
    }
  })
}

/**
 * Keeps one connection per pair of hosts. Both hosts of a pair learn of each other from the tracker and
 * connect both ways; two wires to one peer double the `have` messages and the request selection work.
 * When a second wire to the same peer arrives, both ends keep the one opened by the host with the lower
 * peer id and close the other. The address of a closed outgoing one is not dialled again (webtorrent would
 * retry it, and add it anew from every announce) while the kept wire lives.
 */
function oneWirePerPeer(torrent: Torrent, ourPeerId: string, isRunner: (wire: Wire) => boolean): void {
  type IdWire = Wire & { peerId: string; type: string; destroyed: boolean; remotePort: number }
  const byPeer = new Map<string, IdWire>()
  const doNotDial = new Map<string, IdWire>()
  const openerId = (w: IdWire) => (w.type.endsWith('Outgoing') ? ourPeerId : w.peerId)
  type Internals = { _peers: Map<string, { wire?: Wire; retries: number }>; _addPeer(peer: unknown, type: string, source: string): unknown }
  const internals = torrent as unknown as Internals
  const addPeer = internals._addPeer.bind(torrent)
  internals._addPeer = (peer, type, source) => (typeof peer === 'string' && doNotDial.has(peer) ? null : addPeer(peer, type, source))
  const drop = (w: IdWire, keep: IdWire) => {
    if (w.type.endsWith('Outgoing')) {
      const addr = `${w.remoteAddress}:${w.remotePort}`
      doNotDial.set(addr, keep)
      // webtorrent retries a closed outgoing connection unless its retries are used up.
      for (const peer of internals._peers.values()) if (peer.wire === w) peer.retries = Number.MAX_SAFE_INTEGER
    }
    w.destroy()
  }
  torrent.on('wire', (wire: IdWire) => {
    if (isRunner(wire) || !wire.peerId) return
    const id = wire.peerId
    const other = byPeer.get(id)
    // Both wires opened by the same host cannot be told apart by id: the older one stays.
    if (other && !other.destroyed && openerId(wire) >= openerId(other)) return drop(wire, other)
    if (other && !other.destroyed) drop(other, wire)
    byPeer.set(id, wire)
    wire.once('close', () => {
      if (byPeer.get(id) === wire) byPeer.delete(id)
      for (const [addr, kept] of doNotDial) if (kept === wire) doNotDial.delete(addr)
    })
  })
}

/** When a piece last verified: the runner-sharing rule and the stall watchdog both go by it. */
interface VerifiedClock {
  idleMs(): number
}

function verifiedClock(torrent: Torrent): VerifiedClock {
  let last = Date.now()
  torrent.on('verified', () => (last = Date.now()))
  return { idleMs: () => Date.now() - last }
}

/**
 * Spreads the load so the runner sends each piece about once: host i of N owns the i-th slice of the
 * pieces and fetches it first, from the runner; every other piece it takes from the hosts that own it.
 * Only once its own slice is in, and while the peers leave it idle, does it ask the runner for other
 * pieces (a slow or failed owner never stalls the rest). It never asks the runner for a piece that an
 * unchoked peer offers.
 */
function shareTheRunner(torrent: Torrent, start: StartMessage, isRunner: (wire: Wire) => boolean, progress: VerifiedClock): void {
  type Bits = { get(i: number): boolean }
  type PeerWire = Wire & { peerPieces: Bits; peerChoking: boolean }
  const pieces = torrent.pieces.length
  const of = Math.max(1, start.spread.of)
  const first = Math.floor((pieces * start.spread.index) / of)
  const last = Math.floor((pieces * (start.spread.index + 1)) / of) - 1
  if (first > 0) {
    torrent.select(first, pieces - 1, 2)
    torrent.select(0, first - 1, 1)
  }
  let missingInSlice = 0
  for (let i = first; i <= last; i++) if (!torrent.bitfield.get(i)) missingInSlice++
  // Past its own slice a host asks the runner only while the peers leave it idle (nothing verified
  // for a second): an owner that is merely behind is waited for, a missing one is not. A flag set by a
  // timer, not a clock read per call: the request filter below runs for every candidate piece of every
  // selection.
  let starving = false
  torrent.on('verified', (i: number) => {
    starving = false
    if (i >= first && i <= last) missingInSlice--
  })
  const offeredByPeer = (runner: Wire, i: number) =>
    (torrent.wires as PeerWire[]).some((w) => w !== runner && !w.peerChoking && w.peerPieces.get(i))
  // Idle wires raise no events, so nothing would ask again: look for requests to make while starving.
  const nudge = setInterval(() => {
    if (torrent.done || (torrent as unknown as { destroyed?: boolean }).destroyed) return clearInterval(nudge)
    starving = missingInSlice <= 0 && progress.idleMs() > 1000
    if (starving) (torrent as unknown as { _update(): void })._update()
  }, 250)
  nudge.unref()
  // Not even its own slice when a peer already offers the piece: a host that started late finds much of
  // its slice already spread by the others.
  const fromRunner = (runner: Wire, i: number) => ((i >= first && i <= last) || starving) && !offeredByPeer(runner, i)
  // Refuse requests to the runner outside that policy at the one place every request passes; cheaper
  // than hiding pieces from the runner's bitfield, which webtorrent reads in every selection loop.
  type Requester = { _request(wire: Wire, index: number, hotswap: boolean): boolean }
  const requester = torrent as unknown as Requester
  const request = requester._request.bind(torrent)
  requester._request = (wire, index, hotswap) => (isRunner(wire) && !fromRunner(wire, index) ? false : request(wire, index, hotswap))
}

async function run(start: StartMessage, inbox: { onMessage: (handler: (msg: { t: string }) => void) => void }): Promise<number> {
  if (start.protocol !== PROTOCOL_VERSION) {
    send({ t: 'error', code: 'protocol', message: `runner speaks protocol ${start.protocol}, this agent ${PROTOCOL_VERSION}` })
    return AGENT_EXIT.protocol
  }
  const partial = partialPathFor(start.destination, start.sha256)
  const began = Date.now()
  let client: WebTorrent | undefined
  let finished = false
  let lock: string | undefined
  let settle!: (code: number) => void
  const ended = new Promise<number>((resolve) => { settle = resolve })

  const stop = async (code: number, removePartial: boolean) => {
    if (finished) return
    finished = true
    clearInterval(progressTimer)
    clearInterval(idleTimer)
    await new Promise<void>((resolve) => (client ? client.destroy(() => resolve()) : resolve()))
    if (removePartial) await fs.promises.rm(partial, { force: true }).catch(() => {})
    if (lock) await fs.promises.rm(lock, { force: true }).catch(() => {})
    settle(code)
  }
  const fail = (err: unknown) => {
    const e = err instanceof AgentError ? err : err && (err as NodeJS.ErrnoException).code ? fsFailure(err as NodeJS.ErrnoException, partial) : new AgentError('internal', String((err as Error)?.stack ?? err))
    send({ t: 'error', code: e.code, message: e.message })
    void stop(AGENT_EXIT.failed, true)
  }

  let lastHeard = Date.now()
  let progressTimer: NodeJS.Timeout | undefined
  const idleTimer = setInterval(() => {
    if (Date.now() - lastHeard > start.idleTimeoutSeconds * 1000) {
      log(`no word from the runner for ${start.idleTimeoutSeconds} s; exiting and keeping verified pieces for a retry`)
      void stop(AGENT_EXIT.failed, false)
    }
  }, 1000)
  let done = false
  inbox.onMessage((msg) => {
    lastHeard = Date.now()
    if (msg.t === 'release') void stop(done ? AGENT_EXIT.ok : AGENT_EXIT.failed, !done)
    else if (msg.t === 'abort') {
      log(`aborted by the runner: ${(msg as { reason?: string }).reason ?? ''}`)
      void stop(AGENT_EXIT.failed, !done)
    } else if (msg.t === 'eof') void stop(done ? AGENT_EXIT.ok : AGENT_EXIT.failed, false)
  })
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, () => void stop(AGENT_EXIT.failed, false))

  try {
    lock = await takeDestinationLock(start.destination)
    if (finished) {
      await fs.promises.rm(lock, { force: true }).catch(() => {})
      return ended
    }
    const mode = await preflight(start)
    await removeStalePartials(start.destination, mode === 'identical' ? '' : partial)
    if (mode === 'fetch') await checkFreeSpace(start, partial)
    // Told to stop meanwhile (abort, release, eof): create nothing more.
    if (finished) return ended
    const torrentFile = Buffer.from(start.torrent, 'base64')
    let store: FileStore | undefined
    client = new WebTorrent(privateClientOptions({ torrentPort: 0 }))
    client.on('error', fail)
    // Create the temporary file private to us before the store opens it.
    if (mode === 'fetch') await fs.promises.appendFile(partial, '', { mode: 0o600 })
    const torrent: Torrent = client.add(torrentFile, {
      skipVerify: mode === 'identical',
      // Unchoke every host: a private swarm gains nothing from tit-for-tat.
      uploads: Math.max(10, start.spread.of),
      // webtorrent's piece cache reads whole pieces for single blocks; the store keeps the few pieces
      // just written instead, which is what peers ask for next.
      storeCacheSlots: 0,
      // webtorrent builds the store once it knows the piece length: hand it a constructor.
      store: class {
        constructor(chunkLength: number) {
          store = mode === 'identical'
            ? new FileStore(chunkLength, { path: start.destination, length: start.size })
            : new FileStore(chunkLength, { path: partial, length: start.size, writable: true, recentBytes: RECENT_PIECES_BYTES })
          return store
        }
      },
    })
    torrent.on('error', fail)
    // The one test for the runner's wire, by the address it was told; the open ones are also kept in a
    // set for the request filter, which asks for every candidate piece.
    const isRunnerWire = (wire: Wire) => `${wire.remoteAddress}:${wire.remotePort}` === start.seedPeer
    // Closed wires are let go (peers come and go); the bytes each address sent are kept as counts.
    const runnerWires = new Set<Wire>()
    const receivedFrom = new Map<string, number>()
    let runnerBytes = 0
    torrent.on('wire', (wire: Wire) => {
      const isRunner = isRunnerWire(wire)
      const key = isRunner ? `${peerAddress(wire)} (runner)` : peerAddress(wire)
      if (isRunner) runnerWires.add(wire)
      wire.on('download', (bytes: number) => {
        receivedFrom.set(key, (receivedFrom.get(key) ?? 0) + bytes)
        if (isRunner) runnerBytes += bytes
      })
      wire.once('close', () => runnerWires.delete(wire))
    })
    // Where the bytes came from, for the host's log: tells a working swarm from a star.
    const sources = () =>
      [...receivedFrom]
        .map(([key, bytes]) => `${key} ${(bytes / 1048576).toFixed(1)} MiB`)
        .join(', ')
    guardAgainstBadPeers(torrent, fail, isRunnerWire)
    boundRequestsInFlight(torrent)
    oneWirePerPeer(torrent, (client as unknown as { peerId: string }).peerId, (w) => runnerWires.has(w))
    await new Promise<void>((resolve, reject) => {
      torrent.once('ready', () => resolve())
      torrent.once('error', reject)
    })
    const progress = verifiedClock(torrent)
    if (mode === 'fetch') shareTheRunner(torrent, start, (w) => runnerWires.has(w), progress)
    send({ t: 'ready', protocol: PROTOCOL_VERSION, node: process.version, pid: process.pid, have: torrent.downloaded })
    // webtorrent can leave blocks reserved on a wire that will never deliver them (seen after a peer
    // was killed and came back): when no piece has verified for a while, drop every connection so the
    // stuck requests are cancelled and asked again; peers reconnect through the tracker.
    const stallMs = Math.max(20_000, (torrent.pieceLength / 262_144) * 1000)
    let reconnected = Date.now()
    const stallTimer = setInterval(() => {
      if (finished || done || torrent.done || Math.min(progress.idleMs(), Date.now() - reconnected) < stallMs) return
      reconnected = Date.now()
      log(`no piece verified for ${Math.round(stallMs / 1000)} s; reconnecting to every peer`)
      for (const w of [...torrent.wires]) w.destroy()
      setTimeout(() => torrent.addPeer(start.seedPeer), 500).unref()
    }, 2000)
    stallTimer.unref()
    const onDone = async () => {
      try {
        if (mode === 'fetch') await placeFile(partial, start)
        done = true
        if (mode === 'fetch') log(`received from: ${sources() || 'nobody'}`)
        const mem = process.memoryUsage()
        const cpu = process.cpuUsage()
        const MiB = (n: number) => `${Math.round(n / 1048576)} MiB`
        if (store && mode === 'fetch') log(`uploads read ${store.reads.recent} blocks from recent pieces in memory, ${store.reads.file} from the file`)
        log(`memory: rss ${MiB(mem.rss)} (peak ${MiB(process.resourceUsage().maxRSS * 1024)}), heap ${MiB(mem.heapUsed)}/${MiB(mem.heapTotal)}, buffers ${MiB(mem.arrayBuffers)}; cpu ${(cpu.user / 1e6).toFixed(1)} s user, ${(cpu.system / 1e6).toFixed(1)} s system`)
        send({ t: 'done', transferred: mode === 'fetch', downloaded: mode === 'fetch' ? torrent.received : 0, fromRunner: runnerBytes, seconds: (Date.now() - began) / 1000 })
      } catch (err) {
        fail(err)
      }
    }
    if (torrent.done) void onDone()
    else {
      torrent.once('done', () => void onDone())
      torrent.addPeer(start.seedPeer)
    }
    progressTimer = setInterval(() => {
      send({
        t: 'progress',
        have: torrent.downloaded,
        downloaded: torrent.received,
        uploaded: torrent.uploaded,
        fromRunner: runnerBytes,
        peers: torrent.numPeers,
        rate: Math.round(torrent.downloadSpeed),
      })
    }, start.progressMs)
  } catch (err) {
    fail(err)
  }
  return ended
}

/** Reads the start message, runs, and exits with a code the runner tells apart. */
async function main(): Promise<void> {
  process.title = 'herd-agent'
  joinReceivedDataOncePerMessage()
  // Tell the runner we're alive in every phase (hashing a large file sends nothing else for a while).
  setInterval(() => send({ t: 'alive' }), ALIVE_SECONDS * 1000).unref()
  let handler: ((msg: { t: string }) => void) | undefined
  const pending: { t: string }[] = []
  let startResolve!: (m: StartMessage) => void
  const started = new Promise<StartMessage>((resolve) => { startResolve = resolve })
  let gotStart = false
  const deliver = (msg: { t: string }) => {
    if (!gotStart && msg.t === 'start') {
      gotStart = true
      return startResolve(msg as unknown as StartMessage)
    }
    if (handler) handler(msg)
    else pending.push(msg)
  }
  process.stdin.on('data', lineReader((m) => deliver(m as { t: string }), () => {}))
  // A closed stdin means the runner or its connection is gone: never outlive it.
  process.stdin.on('end', () => {
    if (!gotStart) process.exit(AGENT_EXIT.protocol)
    deliver({ t: 'eof' })
  })
  process.stdin.on('error', () => deliver({ t: 'eof' }))
  const startTimer = setTimeout(() => process.exit(AGENT_EXIT.protocol), 30_000)
  const start = await started
  clearTimeout(startTimer)
  const code = await run(start, {
    onMessage: (h) => {
      handler = h
      for (const m of pending.splice(0)) h(m)
    },
  })
  process.exitCode = code
  // Flush stdout, then leave even if some library left a handle open.
  process.stdout.write('', () => process.exit(code))
}

void main()
