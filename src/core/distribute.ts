// The orchestrator: hash, swarm up, one host run per host, release every agent, report.
import crypto from 'node:crypto'
import { hashFile, type FileTorrent } from './swarm/torrent.js'
import { announceIntervalFor, startTracker, type PrivateTracker } from './swarm/tracker.js'
import { startSeeder, type Seeder } from './swarm/seeder.js'
import { preparePayload, type Payload } from './swarm/payload.js'
import { loadAgentBundle } from './agent-bundle.js'
import { hostRun, type HostRun, type HostState, type SwarmInfo } from './host-run.js'
import { PlanError, type Plan } from './plan.js'
import { count, exitCodeFor, type Report } from './report.js'
import { Limit } from './limit.js'
import { SetupGate } from './setup-gate.js'
import type { ProgressEvent } from './protocol.js'
import type { SshSettings } from './ssh/index.js'

/** What a front end hears while a run goes on. */
export interface RunListener {
  onPhase?(phase: 'hashing' | 'swarm' | 'hosts' | 'releasing', detail?: string): void
  onHostState?(host: string, state: HostState, detail?: string): void
  onProgress?(host: string, progress: ProgressEvent): void
}

export interface DistributeOptions extends RunListener {
  /** Abort to interrupt the run; `signal.reason` ('SIGINT' | 'SIGTERM') is reported. */
  signal?: AbortSignal
}

export function sshSettingsFor(plan: Plan): SshSettings {
  return {
    configPath: plan.sshConfig,
    identityFiles: plan.identityFiles,
    knownHostsFiles: plan.knownHostsFiles,
    hostKeyPolicy: plan.hostKeyPolicy,
    defaultUser: plan.user,
    passphrase: plan.passphrase,
    connectTimeoutMs: 15_000,
    keepaliveIntervalMs: 5_000,
    client: plan.sshClient,
    frontEnd: plan.frontEnd,
  }
}

/**
 * Pushes plan.file to every host; returns the report. Throws only PlanError, before any destination is
 * touched: a busy port before any host is, a file that changes size while it is hashed once the hosts
 * that were being prepared meanwhile have stopped.
 */
export async function distribute(plan: Plan, opts: DistributeOptions = {}): Promise<Report> {
  const began = Date.now()
  const startedAt = new Date(began).toISOString()
  const agent = loadAgentBundle()
  let torrent: FileTorrent | undefined
  let tracker: PrivateTracker
  try {
    tracker = await startTracker({ infoHash: () => torrent?.infoHash, ports: plan.ports, intervalSeconds: announceIntervalFor(plan.hosts.length) })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const range = plan.ports[0] === plan.ports[1] ? `port ${plan.ports[0]}` : `ports ${plan.ports[0]}-${plan.ports[1]}`
    throw new PlanError('--port', `${range} ${code === 'EADDRINUSE' ? 'busy' : `unusable (${code})`}; pick a free port or a wider range, e.g. 8998-9197`)
  }
  let seeder: Seeder | undefined
  let payload: Payload | undefined
  // The run's secret: only agents that got it over their SSH session can join the swarm or read its bytes.
  const seal = { secret: crypto.randomBytes(32), encrypt: plan.encrypt }
  const runAbort = new AbortController()
  let timeoutTimer: NodeJS.Timeout | undefined
  const onOuterAbort = () => runAbort.abort(opts.signal?.reason ?? 'SIGINT')
  const gate = new SetupGate(plan.hosts.map((h) => h.label))
  // Hashing runs while the hosts connect and get the agent: only the agents' start waits for the swarm.
  const swarm = (async (): Promise<SwarmInfo> => {
    opts.onPhase?.('hashing')
    const hashBegan = Date.now()
    payload = await preparePayload(plan)
    if (payload.tree) opts.onPhase?.('hashing', `${plan.file} packed in ${((Date.now() - hashBegan) / 1000).toFixed(2)} s`)
    const hashed = await hashFile(payload.path, { nonce: crypto.randomBytes(16), hosts: plan.hosts.length, cache: !payload.tree })
    const how = hashed.fromCache ? 'hashes taken from an earlier run (the file is unchanged since)' : 'hashed'
    opts.onPhase?.('hashing', `${hashed.size} bytes ${how} in ${((Date.now() - hashBegan) / 1000).toFixed(2)} s, ${Math.ceil(hashed.size / hashed.pieceLength)} pieces of ${hashed.pieceLength} bytes`)
    if (!plan.tree && hashed.size !== plan.size) throw new PlanError('local file', `${plan.file} changed size while it was being read; push a file that is not being written`)
    torrent = hashed
    // The seeder takes the next free port after the tracker's, so a firewall rule can name both. It
    // serves every host: which pieces each may ask it for is the agents' stripe policy.
    const seederPorts = Array.from({ length: 20 }, (_, i) => tracker.port + 1 + i).filter((p) => p <= 65535)
    const started = await startSeeder(payload.path, hashed, { ports: seederPorts, seal, uploadLimit: plan.limitRate, held: true })
    seeder = started
    const seederAt = Date.now()
    gate.whenOpen(() => {
      started.sendOn()
      const held = (Date.now() - seederAt) / 1000
      if (held >= 1 && !runAbort.signal.aborted) opts.onPhase?.('swarm', `sending: the hosts are set up (their SSH set-up had the runner's link to itself for ${held.toFixed(1)} s)`)
    })
    const limited = plan.limitRate ? `, at most ${plan.limitRate} bytes/s into and out of each host and out of the runner (--limit-rate)` : ''
    opts.onPhase?.('swarm', `tracker on port ${tracker.port}, seeder on port ${seeder.port}, info hash ${hashed.infoHash}, ${plan.encrypt ? 'encrypted (AES-256-GCM)' : 'NOT encrypted (--no-encryption)'}${limited}`)
    return { torrent: hashed, tracker, seederPort: seeder.port, runnerId: seeder.peerId, seal, tree: payload.tree, sendingSince: started.sendingSince }
  })()
  // A swarm that can't start ends the run: hosts stop where they are.
  swarm.catch(() => runAbort.abort('swarm'))
  try {
    if (opts.signal) {
      if (opts.signal.aborted) onOuterAbort()
      else opts.signal.addEventListener('abort', onOuterAbort, { once: true })
    }
    if (plan.timeoutSeconds) {
      timeoutTimer = setTimeout(() => runAbort.abort('timeout'), plan.timeoutSeconds * 1000 - (Date.now() - began))
    }
    const connectLimit = new Limit(plan.concurrency)
    const ssh = sshSettingsFor(plan)
    opts.onPhase?.('hosts', count(plan.hosts.length, 'host'))
    // With batched post-commands every agent stays until they have run: their connections carry them.
    const seeds = new SeedRelease(plan.hosts.map((h) => h.label), plan.postBatch === undefined)
    const runs: HostRun[] = await Promise.all(
      plan.hosts.map((spec, index) =>
        hostRun({
          plan,
          spec,
          spread: { index, of: plan.hosts.length },
          swarm,
          agent,
          ssh,
          connectLimit,
          signal: runAbort.signal,
          onState: (h, s, d) => {
            gate.onState(h, s)
            seeds.onState(h, s)
            opts.onHostState?.(h, s, d)
          },
          onProgress: (h, p) => opts.onProgress?.(h, p),
        }).then((run) => seeds.settled(spec.label, run)),
      ),
    )
    // The swarm's own failure (the file changed while it was hashed) is the run's answer.
    const ready = await swarm
    // Rolling post-commands: at most postBatch hosts at a time, now that the file is everywhere.
    if (plan.postBatch !== undefined && !runAbort.signal.aborted) {
      const batch = new Limit(plan.postBatch)
      await Promise.all(runs.filter((r) => r.post).map((r) => batch.run(() => r.post!())))
    }
    // Every host has settled: what happened is known now. A timeout that would fire while the agents
    // are being released must not turn a finished run into an interrupted one.
    clearTimeout(timeoutTimer)
    const hosts = runs.map((r) => r.report)
    const interrupted = runAbort.signal.aborted ? (String(runAbort.signal.reason) as Report['interrupted']) : undefined
    opts.onPhase?.('releasing')
    await seeds.releaseAll()
    return {
      file: plan.file,
      destination: plan.destination,
      size: ready.torrent.size,
      sha256: ready.torrent.sha256,
      startedAt,
      seconds: (Date.now() - began) / 1000,
      bytesFromRunner: seeder?.uploaded() ?? 0,
      runtimeBytes: hosts.reduce((sum, h) => sum + (h.runtimeBytes ?? 0), 0),
      hosts,
      succeeded: hosts.filter((h) => h.status === 'ok').map((h) => h.host),
      failed: hosts.filter((h) => h.status !== 'ok').map((h) => h.host),
      interrupted,
      exitCode: exitCodeFor(hosts, interrupted),
    }
  } finally {
    gate.open()
    clearTimeout(timeoutTimer)
    opts.signal?.removeEventListener('abort', onOuterAbort)
    await swarm.catch(() => {})
    await seeder?.close()
    await payload?.dispose()
    await tracker.close()
  }
}

/**
 * Lets finished agents go as soon as no host needs them as seeds: a host on its first attempt, or one
 * whose agent is starting or fetching, may still download from them; hosts that failed and wait for
 * a retry (a dead host under --retry -1) don't hold the rest, and fetch from the runner if they return.
 */
class SeedRelease {
  private readonly state = new Map<string, HostState>()
  private readonly retried = new Set<string>()
  private readonly unsettled: Set<string>
  private readonly finished: HostRun[] = []
  private readonly releasing: Promise<void>[] = []

  constructor(hosts: string[], private readonly early: boolean) {
    this.unsettled = new Set(hosts)
  }

  onState(host: string, state: HostState): void {
    this.state.set(host, state)
    if (state === 'retrying') this.retried.add(host)
    this.check()
  }

  settled(host: string, run: HostRun): HostRun {
    this.unsettled.delete(host)
    if (run.report.status === 'ok') this.finished.push(run)
    this.check()
    return run
  }

  /** Releases what is left and waits for every release, early ones included. */
  async releaseAll(): Promise<void> {
    this.releaseFinished()
    await Promise.all(this.releasing)
  }

  private check(): void {
    if (!this.early || this.finished.length === 0) return
    for (const host of this.unsettled) {
      const s = this.state.get(host)
      if (!this.retried.has(host) || s === 'starting' || s === 'fetching') return
    }
    this.releaseFinished()
  }

  private releaseFinished(): void {
    for (const run of this.finished.splice(0)) this.releasing.push(run.release().catch(() => {}))
  }
}
