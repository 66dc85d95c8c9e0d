// herd's agent: runs on each host under plain `node`, fetches the file from the run's swarm into a temporary
// file beside the destination, verifies it, renames it into place, and seeds until the runner releases it.
import fs from 'node:fs'
import crypto from 'node:crypto'
import {
  AGENT_EXIT,
  ALIVE_SECONDS,
  MAX_LINE_BYTES,
  PROTOCOL_VERSION,
  encodeLine,
  lineReader,
  type AgentEvent,
  type RunnerRoute,
  type StartMessage,
} from '../core/protocol.js'
import { Announcer, NUMWANT } from '../engine/announce.js'
import { Bitfield } from '../engine/bitfield.js'
import { readTorrent } from '../engine/metainfo.js'
import { Store, piecesPresent } from '../engine/store.js'
import { Swarm } from '../engine/swarm.js'
import { RateLimit } from '../engine/rate.js'
import { RunningHash } from './running-hash.js'
import { hostPort, pickRoute, sshServerAddress } from './route.js'
import { AgentError, checkFreeSpace, checkWhole, retouchFile, createPartial, fsFailure, partialPathFor, placeFile, preflight, removeStalePartials, takeDestinationLock } from './destination.js'
import { placeTree, preflightTree, removeStaleStaging } from './place-tree.js'
import { requestedOwner } from './owner.js'

function send(event: AgentEvent): void {
  process.stdout.write(encodeLine(event))
}

function log(message: string): void {
  send({ t: 'log', message })
}


async function run(start: StartMessage, inbox: { onMessage: (handler: (msg: { t: string }) => void) => void }): Promise<number> {
  if (start.protocol !== PROTOCOL_VERSION) {
    send({ t: 'error', code: 'protocol', message: `runner speaks protocol ${start.protocol}, this agent ${PROTOCOL_VERSION}` })
    return AGENT_EXIT.protocol
  }
  const partial = partialPathFor(start.destination, start.sha256)
  const began = Date.now()
  let swarm: Swarm | undefined
  let announcer: Announcer | undefined
  let stopHashing = () => {}
  let finished = false
  let lock: string | undefined
  // Work left for the end of the agent's life (the old folder a swap put aside).
  let cleanup = async () => {}
  let settle!: (code: number) => void
  const ended = new Promise<number>((resolve) => { settle = resolve })

  const stop = async (code: number, removePartial: boolean) => {
    if (finished) return
    finished = true
    clearInterval(progressTimer)
    clearInterval(idleTimer)
    await announcer?.stop()
    await swarm?.close()
    stopHashing()
    // Only the holder of the destination's lock touches its temporary file: a refused agent leaves it be.
    if (removePartial && lock) await fs.promises.rm(partial, { force: true }).catch(() => {})
    await cleanup().catch(() => {})
    if (lock) await fs.promises.rm(lock, { force: true }).catch(() => {})
    settle(code)
  }
  const fail = (err: unknown) => {
    const e = err instanceof AgentError ? err : err && (err as NodeJS.ErrnoException).code ? fsFailure(err as NodeJS.ErrnoException, partial) : new AgentError('internal', String((err as Error)?.stack ?? err))
    send({ t: 'error', code: e.code, message: e.message })
    void stop(AGENT_EXIT.failed, true)
  }

  let lastHeard = Date.now()
  let fromRunner = 0
  let verified = 0
  let progressTimer: NodeJS.Timeout | undefined
  const idleTimer = setInterval(() => {
    // Bytes from the runner's seeder are word from it too: where they come through the SSH connection on a
    // saturated link, the runner's messages wait behind them (a 1 MiB piece takes 16 s at 0.5 Mbit/s).
    if (swarm && swarm.stats.fromRunner !== fromRunner) {
      fromRunner = swarm.stats.fromRunner
      lastHeard = Date.now()
    }
    // So is a piece verified from the peers: the run is alive, and its messages are only late (on full
    // links their SSH connection backs off for tens of seconds). 200 hosts at 4 Mbit/s: agents that quit
    // on the runner's silence while their peers fed them took those peers' sources away, and they stalled.
    if (swarm && swarm.have.count !== verified) {
      verified = swarm.have.count
      lastHeard = Date.now()
    }
    if (Date.now() - lastHeard > start.idleTimeoutSeconds * 1000) {
      const silent = `no word from the runner reached the agent for ${start.idleTimeoutSeconds} s`
      log(`${silent}; exiting and keeping verified pieces for a retry`)
      // The other way may still be open: the runner then names the cause instead of a bare exit code.
      send({ t: 'error', code: 'runner-silent', message: silent })
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
    else if (msg.t === 'broken') void stop(AGENT_EXIT.protocol, !done)
  })
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, () => void stop(AGENT_EXIT.failed, false))

  try {
    lock = await takeDestinationLock(start.destination, start.runnerId, log)
    if (finished) {
      await fs.promises.rm(lock, { force: true }).catch(() => {})
      return ended
    }
    const tree = start.tree ? { ...start, tree: start.tree } : undefined
    const mode = tree ? await preflightTree(tree) : await preflight(start)
    // Names resolved before any byte moves: an unknown user fails the host now, not after the download.
    const owner = requestedOwner(start.attributes ?? {})
    if (!tree && mode === 'identical') await retouchFile(start, owner, log)
    await removeStalePartials(start.destination, mode === 'identical' ? '' : partial, log)
    if (tree) await removeStaleStaging(tree, log)
    if (tree && mode === 'identical') {
      // The host holds the tree but not its payload: nothing to serve, so it only waits to be released.
      log(`${start.destination} already holds this folder; nothing transferred`)
      send({ t: 'ready', protocol: PROTOCOL_VERSION, node: process.version, pid: process.pid, have: start.size })
      done = true
      send({ t: 'done', transferred: false, downloaded: 0, fromRunner: 0, seconds: (Date.now() - began) / 1000 })
      return ended
    }
    if (mode === 'fetch') await checkFreeSpace(start, partial)
    // Told to stop meanwhile (abort, release, eof): create nothing more.
    if (finished) return ended
    const meta = readTorrent(Buffer.from(start.torrent, 'base64'))
    const pieces = start.size === 0 ? 1 : Math.ceil(start.size / meta.pieceLength)
    let have: Bitfield
    if (mode === 'identical') have = Bitfield.full(pieces)
    else {
      // Private to us from the start; a leftover one is resumed from the pieces it holds.
      await createPartial(partial, log)
      have = new Bitfield(pieces)
      await piecesPresent(partial, meta, have)
    }
    if (finished) return ended
    const store = new Store({ path: mode === 'identical' ? start.destination : partial, length: start.size, writable: mode === 'fetch' })
    const peerId = crypto.randomBytes(20)
    swarm = new Swarm({
      meta,
      seal: { secret: Buffer.from(start.secret, 'base64'), encrypt: start.encrypt },
      peerId,
      store,
      have,
      stripe: mode === 'fetch' ? start.spread : undefined,
      runnerId: start.runnerId,
      // Two buckets: what a host sends does not slow what it receives.
      limits: start.limitRate ? { upload: new RateLimit(start.limitRate), download: new RateLimit(start.limitRate) } : undefined,
      // As many as the tracker is asked for (see NUMWANT).
      maxPeers: NUMWANT,
    })
    const active = swarm
    active.on('log', log)
    if (start.limitRate) log(`receiving and sending at most ${start.limitRate} bytes/s each (--limit-rate)`)
    // The whole file's SHA-256 follows the written, verified prefix in a worker thread.
    let wholeHash: RunningHash | undefined
    if (mode === 'fetch') {
      const hasher = (wholeHash = new RunningHash(partial, { flush: !tree }))
      stopHashing = () => hasher.stop()
      const stored = new Bitfield(pieces)
      for (let i = 0; i < pieces; i++) if (have.get(i)) stored.set(i)
      let prefix = 0
      const advance = () => {
        while (prefix < pieces && stored.get(prefix)) prefix++
        hasher.advance(Math.min(start.size, prefix * meta.pieceLength))
      }
      active.on('stored', (i) => {
        stored.set(i)
        if (i === prefix) advance()
      })
      advance()
    }
    active.on('failed', (err) => fail(/pieces failed verification/.test(err.message) ? new AgentError('bad-peers', err.message) : err))
    const port = await active.listen([0])
    // A host that already holds the file seeds if it can reach the tracker, and needs nothing else.
    let route: RunnerRoute | undefined
    try {
      route = await pickRoute(start.routes, start.probeMs, log)
    } catch (err) {
      if (!active.done) throw err
      log(`${(err as Error).message}; the file is in place, so this host only waits to be released`)
    }
    if (finished) return ended
    send({ t: 'ready', protocol: PROTOCOL_VERSION, node: process.version, pid: process.pid, have: Math.min(start.size, have.count * meta.pieceLength), via: route?.via })
    // Through a tunnel the tracker sees the runner's own loopback: name the address the others dial.
    const advertised = route?.via === 'ssh' ? sshServerAddress() : undefined
    announcer = new Announcer({
      url: route?.announce ?? '',
      ip: advertised,
      infoHash: meta.infoHash,
      peerId,
      port,
      left: () => (active.done ? 0 : start.size - active.have.count * meta.pieceLength),
      onPeers: (peers) => { for (const p of peers) active.connect(p.host, p.port) },
      onError: log,
    })
    if (route) announcer.start()
    // Where the bytes came from, for the host's log: tells a working swarm from a star.
    const sources = () =>
      [...active.receivedFrom]
        .map(([addr, bytes]) => `${addr}${route && addr === hostPort(route.seedPeer).host ? ' (runner)' : ''} ${(bytes / 1048576).toFixed(1)} MiB`)
        .join(', ')
    const onDone = async () => {
      try {
        if (mode === 'fetch') {
          log(`every piece verified ${((Date.now() - began) / 1000).toFixed(2)} s after the start`)
          await checkWhole(start, () => wholeHash!.digest(start.size), log)
          if (tree) {
            const placed = await placeTree(partial, tree, owner, log)
            cleanup = placed.cleanup
            // Unlinked now, so no payload is left behind; the store's open descriptor still serves the
            // other hosts until the release, and the space returns when the agent exits.
            await fs.promises.rm(partial, { force: true })
          } else await placeFile(partial, start, owner, log)
        }
        done = true
        announcer?.completed()
        if (mode === 'fetch') log(`received from: ${sources() || 'nobody'}`)
        const mem = process.memoryUsage()
        const cpu = process.cpuUsage()
        const MiB = (n: number) => `${Math.round(n / 1048576)} MiB`
        if (mode === 'fetch') log(`received blocks held in memory: at most ${active.pool.peak} MiB (pooled buffers)`)
        log(`memory: rss ${MiB(mem.rss)} (peak ${MiB(process.resourceUsage().maxRSS * 1024)}), heap ${MiB(mem.heapUsed)}/${MiB(mem.heapTotal)}, buffers ${MiB(mem.arrayBuffers)}; cpu ${(cpu.user / 1e6).toFixed(1)} s user, ${(cpu.system / 1e6).toFixed(1)} s system`)
        send({ t: 'done', transferred: mode === 'fetch', downloaded: mode === 'fetch' ? active.stats.downloaded : 0, fromRunner: active.stats.fromRunner, seconds: (Date.now() - began) / 1000 })
      } catch (err) {
        fail(err)
      }
    }
    if (active.done) void onDone()
    else {
      active.once('done', () => void onDone())
      // The runner is dialled directly (it never announces), and again whenever its wire drops.
      const seed = hostPort(route!.seedPeer)
      active.runnerShared = route!.via === 'ssh'
      active.keepDialling(seed.host, seed.port)
    }
    let lastDownloaded = 0
    let lastAt = Date.now()
    progressTimer = setInterval(() => {
      const now = Date.now()
      const { downloaded, uploaded, fromRunner } = active.stats
      send({
        t: 'progress',
        have: Math.min(start.size, active.have.count * meta.pieceLength),
        downloaded,
        uploaded,
        fromRunner,
        peers: active.peerCount,
        rate: Math.round(((downloaded - lastDownloaded) * 1000) / Math.max(1, now - lastAt)),
      })
      lastDownloaded = downloaded
      lastAt = now
    }, start.progressMs)
  } catch (err) {
    fail(err)
  }
  return ended
}

/** Reads the start message, runs, and exits with a code the runner tells apart. */
async function main(): Promise<void> {
  process.title = 'herd-agent'
  // Tell the runner we're alive in every phase (hashing a large file sends nothing else for a while), and
  // at once which process we are: the runner kills an agent that does not exit when it should.
  const alive = () => send({ t: 'alive', pid: process.pid })
  alive()
  setInterval(alive, ALIVE_SECONDS * 1000).unref()
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
  const tooLong = (bytes: number) => {
    send({ t: 'error', code: 'protocol', message: `a line from the runner ran past ${MAX_LINE_BYTES.toAgent} bytes (${bytes} without its end): the runner and this agent do not speak the same protocol` })
    if (gotStart) deliver({ t: 'broken' })
    else process.stdout.write('', () => process.exit(AGENT_EXIT.protocol))
  }
  process.stdin.on('data', lineReader((m) => deliver(m as { t: string }), () => {}, { maxBytes: MAX_LINE_BYTES.toAgent, onTooLong: tooLong }))
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
