// One host's life: connect → preflight → agent → events → retry; every step goes to the host's log.
import type { ClientChannel, SFTPWrapper } from 'ssh2'
import { connectHost, shellCommand, SshError, type SshConnection, type SshSettings } from './ssh/index.js'
import { AGENT_EXIT, ALIVE_SECONDS, PROTOCOL_VERSION, encodeLine, lineReader, type AgentEvent, type ProgressEvent, type RunnerRoute, type StartMessage } from './protocol.js'
import { AGENT_NODE_FLAGS, BOOTSTRAP, type AgentBundle } from './agent-bundle.js'
import { torrentFileFor, type FileTorrent } from './swarm/torrent.js'
import type { PrivateTracker } from './swarm/tracker.js'
import type { RunSeal } from '../engine/seal.js'
import type { HostSpec } from './hosts.js'
import type { Plan } from './plan.js'
import type { HostReport } from './report.js'
import { HostLog } from './host-log.js'
import type { Limit } from './limit.js'
import { ForwardRefused, openTunnel, type Tunnel } from './tunnel.js'

/** The swarm every host joins. */
export interface SwarmInfo {
  torrent: FileTorrent
  tracker: PrivateTracker
  seederPort: number
  /** The seeder's peer id (hex), for the agents to tell the runner's wire by. */
  runnerId: string
  /** The run's secret (sent to each agent over its SSH session only, never logged) and encryption choice. */
  seal: RunSeal
}

export type HostState = 'connecting' | 'starting' | 'fetching' | 'done' | 'retrying' | 'failed'

export interface HostRunContext {
  plan: Plan
  spec: HostSpec
  /**
   * The swarm, once the file is hashed and the seeder is up. Hosts connect and get the agent meanwhile:
   * only the agent's start waits for it (a rejection ends this host's attempts).
   */
  swarm: Promise<SwarmInfo>
  /** The agent bundle every host gets. */
  agent: AgentBundle
  ssh: SshSettings
  connectLimit: Limit
  /** This host's place among all hosts, for the agent's piece order. */
  spread: { index: number; of: number }
  /** Aborted when the run ends early (timeout or signal); `reason` is 'timeout', 'SIGINT' or 'SIGTERM'. */
  signal: AbortSignal
  onState(host: string, state: HostState, detail?: string): void
  onProgress(host: string, progress: ProgressEvent): void
}

/** A settled host: its report, and a way to let its agent go once the whole run is settled. */
export interface HostRun {
  report: HostReport
  /** Tells the agent to stop seeding, waits for it to exit, closes the connection. */
  release(): Promise<void>
}

/** Why an attempt failed: `retryable` false means another attempt can't help. */
class AttemptError extends Error {
  constructor(readonly kind: string, message: string, readonly retryable: boolean) {
    super(message)
  }
}

const PERMANENT_AGENT_ERRORS = new Set(['no-space', 'not-writable', 'no-folder', 'not-a-file', 'read-only-fs', 'protocol', 'unsafe-folder', 'no-node'])
/** The direct way's head start before the agent tries the SSH one too (a connect in a datacenter takes ms). */
const PROBE_MS = 1000
const RETRYABLE_SSH = new Set(['connect', 'timeout', 'jump', 'channel'])
const PING_MS = 5000
const AGENT_IDLE_TIMEOUT_S = 30

const CONNECT_KINDS = new Set(['connect', 'timeout', 'resolve', 'jump'])

function toAttemptError(err: unknown, label: string): AttemptError {
  if (err instanceof AttemptError) return err
  if (err instanceof SshError) {
    // The report names the host already; say plainly when we never got in.
    const what = err.message.startsWith(`${label}: `) ? err.message.slice(label.length + 2) : err.message
    return new AttemptError(err.kind, CONNECT_KINDS.has(err.kind) ? `could not connect: ${what}` : what, RETRYABLE_SSH.has(err.kind))
  }
  return new AttemptError('internal', (err as Error)?.message ?? String(err), true)
}

/** The failure of a host the run ended for (timeout or signal) before it finished. */
function endedError(signal: AbortSignal): AttemptError {
  const reason = String(signal.reason ?? 'interrupted')
  return reason === 'timeout'
    ? new AttemptError('timed-out', 'the overall --timeout ended before this host finished', false)
    : new AttemptError('interrupted', `the run was interrupted (${reason})`, false)
}

/** Stops an attempt between steps once the run has ended, so no agent starts after an interrupt. */
function throwIfEnded(signal: AbortSignal): void {
  if (signal.aborted) throw endedError(signal)
}

/** Waits for a connection, but gives up at once when the run ends; one that completes later is closed. */
function untilEnded(connecting: Promise<SshConnection>, signal: AbortSignal): Promise<SshConnection> {
  if (signal.aborted) {
    void connecting.then((c) => c.close(), () => {})
    return Promise.reject(endedError(signal))
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      void connecting.then((c) => c.close(), () => {})
      reject(endedError(signal))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    connecting.then(
      (c) => {
        signal.removeEventListener('abort', onAbort)
        if (signal.aborted) {
          c.close()
          return reject(endedError(signal))
        }
        resolve(c)
      },
      (err) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

function sftpCall<T>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))))
}

/** Runs a short command and collects its output. */
async function execCollect(conn: SshConnection, command: string, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const channel = await conn.exec(command)
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    let code: number | null = null
    const timer = setTimeout(() => {
      channel.close()
      reject(new AttemptError('timeout', `'${command.slice(0, 60)}' did not finish in ${timeoutMs / 1000} s`, true))
    }, timeoutMs)
    channel.on('data', (d: Buffer) => (stdout += d.toString()))
    channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    channel.on('exit', (c: number | null) => (code = c))
    channel.on('close', () => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    channel.end()
  })
}

/** Checks node on the host and learns our uid there. */
async function preflight(conn: SshConnection, plan: Plan, log: HostLog): Promise<{ uid: number; node: string }> {
  const probe = "process.stdout.write(JSON.stringify({v:process.version,uid:process.getuid?process.getuid():-1}))"
  const r = await execCollect(conn, shellCommand([plan.node, '-e', probe]))
  if (r.code === 127 || /not found/.test(r.stderr)) {
    throw new AttemptError('no-node', `'${plan.node}' was not found on the host; install Node.js 20 or newer there, or pass --node with its path`, false)
  }
  let info: { v: string; uid: number }
  try {
    info = JSON.parse(r.stdout)
  } catch {
    throw new AttemptError('no-node', `'${plan.node} -e' did not run (exit ${r.code}): ${r.stderr.trim().slice(0, 200)}; check --node`, false)
  }
  const major = Number(/^v(\d+)/.exec(info.v)?.[1] ?? 0)
  if (major < 20) throw new AttemptError('no-node', `node on the host is ${info.v}; herd's agent needs Node.js 20 or newer (pass --node with a newer one)`, false)
  log.write(`node ${info.v} on the host, uid ${info.uid}`)
  return { uid: info.uid, node: info.v }
}

/** Creates the working folder 0700 if needed and refuses one that others could tamper with. */
async function prepareWorkDir(sftp: SFTPWrapper, plan: Plan, uid: number, log: HostLog): Promise<void> {
  const parts = plan.remotePath.split('/').filter((p) => p !== '' && p !== '.')
  let current = plan.remotePath.startsWith('/') ? '' : '.'
  for (const part of parts) {
    current = current === '' ? `/${part}` : `${current}/${part}`
    const exists = await sftpCall<unknown>((cb) => sftp.stat(current, cb)).then(() => true, () => false)
    if (!exists) {
      await sftpCall<void>((cb) => sftp.mkdir(current, { mode: 0o700 }, cb)).catch((err: Error) => {
        throw new AttemptError('unsafe-folder', `cannot create working folder ${current} (${err.message}); choose --remote-path in a folder you can write`, false)
      })
      log.write(`created ${current} (0700)`)
    }
  }
  const st = await sftpCall<import('ssh2').Stats>((cb) => sftp.lstat(current, cb))
  const where = `working folder ${plan.remotePath}`
  if (st.isSymbolicLink()) throw new AttemptError('unsafe-folder', `${where} is a symbolic link; herd refuses it (replace it with a real folder or choose another --remote-path)`, false)
  if (!st.isDirectory()) throw new AttemptError('unsafe-folder', `${where} is not a folder; choose another --remote-path`, false)
  if (uid >= 0 && st.uid !== uid) throw new AttemptError('unsafe-folder', `${where} is owned by uid ${st.uid}, not by the login user (uid ${uid}); herd refuses it (choose another --remote-path)`, false)
  if ((st.mode & 0o022) !== 0) throw new AttemptError('unsafe-folder', `${where} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 700 on it or choose another --remote-path`, false)
}

/** Uploads the agent under its hash name unless that exact build is already there. */
async function uploadAgent(sftp: SFTPWrapper, plan: Plan, agent: AgentBundle, log: HostLog, force: boolean): Promise<void> {
  const unpacked = `${plan.remotePath}/${agent.remoteName}`
  if (!force) {
    const st = await sftpCall<import('ssh2').Stats>((cb) => sftp.stat(unpacked, cb)).catch(() => undefined)
    if (st && st.size === agent.bytes.length) {
      log.write(`agent ${agent.remoteName} already on the host`)
      return
    }
  }
  // Upload gzipped under a temporary name, then rename: the bootstrap unpacks and hash-checks it.
  const target = `${unpacked}.gz`
  const temp = `${target}.${process.pid}.${Date.now()}.tmp`
  const began = Date.now()
  await sftpCall<void>((cb) => sftp.writeFile(temp, agent.gzipped, { mode: 0o600 }, cb))
  try {
    await sftpCall<void>((cb) => sftp.ext_openssh_rename(temp, target, cb))
  } catch {
    await sftpCall<void>((cb) => sftp.unlink(target, cb)).catch(() => {})
    await sftpCall<void>((cb) => sftp.rename(temp, target, cb))
  }
  log.write(`uploaded agent ${agent.remoteName} (${agent.gzipped.length} bytes gzipped) in ${Date.now() - began} ms`)
}

function formatPeer(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}

/** The ways this host may take to the runner, and the tunnel behind the SSH one. */
interface Routes {
  routes: RunnerRoute[]
  tunnel?: Tunnel
  /** Why there is no SSH route (sshd refused the forward), for the message if the direct one fails too. */
  noTunnel?: string
}

/**
 * Direct first (the runner's address as this connection shows it), then the host's own SSH connection.
 * Behind ProxyJump or ProxyCommand that address is the jump's or none, so only the SSH way is offered
 * unless the user forces direct.
 */
async function routesTo(ctx: HostRunContext, conn: SshConnection, swarm: SwarmInfo, log: HostLog): Promise<Routes> {
  const way = ctx.plan.runnerVia
  const address = conn.localAddress !== '' && (way === 'direct' || !conn.viaJump) ? conn.localAddress : undefined
  const routes: RunnerRoute[] = []
  if (address) routes.push({ via: 'direct', seedPeer: formatPeer(address, swarm.seederPort), announce: swarm.tracker.urlFor(address) })
  if (way === 'direct') {
    if (!address) throw new AttemptError('unreachable', 'this host is reached through ProxyCommand, so the runner has no address it can dial; use runner-via auto or ssh', false)
    return { routes }
  }
  try {
    const tunnel = await openTunnel(conn, { seederPort: swarm.seederPort, trackerPort: swarm.tracker.port })
    routes.push({ via: 'ssh', seedPeer: formatPeer('127.0.0.1', tunnel.seederPort), announce: swarm.tracker.urlFor('127.0.0.1', tunnel.trackerPort) })
    log.write(`runner's seeder and tracker forwarded to the host's 127.0.0.1:${tunnel.seederPort} and :${tunnel.trackerPort} over SSH`)
    return { routes, tunnel }
  } catch (err) {
    if (!(err instanceof ForwardRefused)) throw err
    const why = `sshd refused to forward a port to the runner (${err.message})`
    if (way === 'ssh' || routes.length === 0) {
      throw new AttemptError('no-forwarding', `${why}; allow it in the host's sshd (AllowTcpForwarding yes or remote)${address ? ' or use runner-via direct' : ''}`, false)
    }
    log.write(`${why}: only the direct way (${address}) is left`)
    return { routes, noTunnel: why }
  }
}

/** A running agent on one host, from start message to exit. */
class AgentSession {
  private pinger?: NodeJS.Timeout
  private exited: Promise<{ code: number | null; signal: string | null }>
  lastProgress?: ProgressEvent

  constructor(readonly conn: SshConnection, readonly channel: ClientChannel) {
    this.exited = new Promise((resolve) => {
      let code: number | null = null
      let signal: string | null = null
      channel.on('exit', (c: number | null, s?: string) => {
        code = c
        signal = s ?? null
      })
      channel.on('close', () => {
        clearInterval(this.pinger)
        resolve({ code, signal })
      })
    })
    this.pinger = setInterval(() => this.send({ t: 'ping' }), PING_MS)
  }

  send(msg: Parameters<typeof encodeLine>[0]): void {
    if (this.channel.writable) this.channel.write(encodeLine(msg))
  }

  waitExit(): Promise<{ code: number | null; signal: string | null }> {
    return this.exited
  }

  /** Sends `release` or `abort`, waits a bounded time for the agent to exit, then closes the connection. */
  async finish(message: 'release' | 'abort', reason = ''): Promise<void> {
    this.send(message === 'release' ? { t: 'release' } : { t: 'abort', reason })
    this.channel.end()
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 10_000).unref())])
    clearInterval(this.pinger)
    this.conn.close()
  }
}

/** Starts the agent and resolves once it reports the file in place; the session stays up for seeding. */
/** What a finished agent reported. */
interface AgentDone {
  transferred: boolean
  downloaded: number
  fromRunner: number
  via?: RunnerRoute['via']
}

async function startAgent(ctx: HostRunContext, conn: SshConnection, log: HostLog): Promise<{ session: AgentSession; done: AgentDone }> {
  const { plan, agent } = ctx
  let swarm: SwarmInfo
  try {
    swarm = await ctx.swarm
  } catch (err) {
    conn.close()
    throw new AttemptError('swarm', `the run could not start its swarm: ${(err as Error).message}`, false)
  }
  if (ctx.signal.aborted) {
    conn.close()
    throw endedError(ctx.signal)
  }
  let ways: Routes
  try {
    ways = await routesTo(ctx, conn, swarm, log)
  } catch (err) {
    conn.close()
    throw err
  }
  // For profiling: HERD_AGENT_NODE_FLAGS adds node flags to the agents (e.g. --cpu-prof).
  const extraFlags = (process.env.HERD_AGENT_NODE_FLAGS ?? '').split(' ').filter(Boolean)
  const command = `cd -- ${shellCommand([plan.remotePath])} && exec ${shellCommand([plan.node, ...AGENT_NODE_FLAGS, ...extraFlags, '-e', BOOTSTRAP, agent.remoteName, agent.sha256])}`
  const channel = await conn.exec(command)
  const session = new AgentSession(conn, channel)
  const start: StartMessage = {
    t: 'start',
    protocol: PROTOCOL_VERSION,
    torrent: torrentFileFor(swarm.torrent, ways.routes[0]!.announce).toString('base64'),
    destination: plan.destination,
    sha256: swarm.torrent.sha256,
    size: swarm.torrent.size,
    mode: plan.mode,
    routes: ways.routes,
    probeMs: PROBE_MS,
    runnerId: swarm.runnerId,
    secret: swarm.seal.secret.toString('base64'),
    encrypt: swarm.seal.encrypt,
    idleTimeoutSeconds: AGENT_IDLE_TIMEOUT_S,
    progressMs: 1000,
    host: ctx.spec.label,
    spread: ctx.spread,
  }
  session.send(start)
  log.write(`agent started for the file with sha256 ${swarm.torrent.sha256}; the runner's ways: ${ways.routes.map((r) => `${r.via} ${r.seedPeer}`).join(', ')} (seeder port ${swarm.seederPort}, tracker port ${swarm.tracker.port})`)
  let agentError: AttemptError | undefined
  let stderrTail = ''
  channel.stderr.on('data', (d: Buffer) => {
    const text = d.toString()
    stderrTail = (stderrTail + text).slice(-2000)
    for (const line of text.split('\n')) if (line.trim()) log.write(`agent stderr: ${line}`)
  })
  return new Promise((resolve, reject) => {
    let settled = false
    const onAbort = () => {
      if (settled) return
      settled = true
      // Settle only once the agent has removed its temporary file and exited (bounded by finish).
      void session.finish('abort', String(ctx.signal.reason ?? 'interrupted')).then(() => reject(endedError(ctx.signal)))
    }
    if (ctx.signal.aborted) onAbort()
    else ctx.signal.addEventListener('abort', onAbort, { once: true })
    // An agent that hangs while its connection stays up would otherwise hold the run until --timeout.
    let lastHeard = Date.now()
    channel.on('data', () => (lastHeard = Date.now()))
    // A host that gets nothing (no way to the runner or to the peers) fails after stall-timeout, from
    // its ready line on: hashing a resumed file before it is not a stall.
    let via: RunnerRoute['via'] | undefined
    let movedAt: number | undefined
    let moved = { have: -1, downloaded: -1 }
    const stallMs = ctx.plan.stallSeconds * 1000
    const noteProgress = (have: number, downloaded: number) => {
      if (have > moved.have || downloaded > moved.downloaded) movedAt = Date.now()
      moved = { have, downloaded }
    }
    const watchdog = setInterval(() => {
      if (!settled && movedAt !== undefined && moved.have < swarm.torrent.size && Date.now() - movedAt > stallMs) {
        settled = true
        clearInterval(watchdog)
        ctx.signal.removeEventListener('abort', onAbort)
        const p = session.lastProgress
        const where = via === 'ssh' ? 'through its SSH connection' : `directly at ${ways.routes[0]?.seedPeer}`
        const cause = `no data arrived for ${ctx.plan.stallSeconds} s (${Math.max(0, moved.have)} of ${swarm.torrent.size} bytes verified, ${p?.peers ?? 0} peers, the runner reached ${where}); check that the hosts can reach each other on the agents' ports, or raise stall-timeout`
        log.write(`stalled: ${cause}`)
        void session.finish('abort', 'stalled').then(() => reject(new AttemptError('stalled', cause, true)))
        return
      }
      if (settled || Date.now() - lastHeard < ALIVE_SECONDS * 12 * 1000) return
      settled = true
      clearInterval(watchdog)
      ctx.signal.removeEventListener('abort', onAbort)
      log.write(`the agent sent nothing for ${ALIVE_SECONDS * 12} s; stopping it`)
      void session.finish('abort', 'silent').then(() => reject(new AttemptError('agent-silent', `the agent stopped answering for ${ALIVE_SECONDS * 12} s (is the host overloaded?); it was stopped`, true)))
    }, 1000)
    void session.waitExit().then(() => clearInterval(watchdog))
    channel.on(
      'data',
      lineReader(
        (msg) => {
          const event = msg as AgentEvent
          switch (event.t) {
            case 'ready':
              via = event.via
              noteProgress(event.have, 0)
              log.write(`agent ready (pid ${event.pid}, node ${event.node}); ${event.have} bytes already verified${via ? `; runner reached ${via === 'ssh' ? 'through SSH' : 'directly'}` : ''}`)
              ctx.onState(ctx.spec.label, 'fetching')
              break
            case 'progress':
              session.lastProgress = event
              noteProgress(event.have, event.downloaded)
              ctx.onProgress(ctx.spec.label, event)
              break
            case 'log':
              log.write(`agent: ${event.message}`)
              break
            case 'error':
              log.write(`agent error (${event.code}): ${event.message}`)
              agentError = new AttemptError(
                event.code,
                event.code === 'unreachable' ? `${event.message}${ways.noTunnel ? `, and ${ways.noTunnel}` : ''}; ${ways.noTunnel ? "open the runner's ports to this host or allow TCP forwarding in its sshd (AllowTcpForwarding)" : "open the runner's ports to this host"}` : event.message,
                !PERMANENT_AGENT_ERRORS.has(event.code),
              )
              break
            case 'done':
              log.write(`done: ${event.transferred ? `fetched ${event.downloaded} bytes (${event.fromRunner} from the runner)` : 'the identical file was already in place; nothing transferred'} in ${event.seconds.toFixed(1)} s`)
              if (event.transferred && event.downloaded > 0 && event.fromRunner >= event.downloaded && ctx.spread.of > 1) {
                log.write('every byte came from the runner: this host reached no other host (check the firewall between the hosts)')
              }
              if (!settled) {
                settled = true
                ctx.signal.removeEventListener('abort', onAbort)
                resolve({ session, done: { transferred: event.transferred, downloaded: event.downloaded, fromRunner: event.fromRunner, via } })
              }
              break
          }
        },
        (text) => log.write(`agent says: ${text}`),
      ),
    )
    void session.waitExit().then(({ code, signal }) => {
      ctx.signal.removeEventListener('abort', onAbort)
      conn.close()
      if (settled) return
      settled = true
      if (agentError) return reject(agentError)
      if (code === AGENT_EXIT.missingAgent) return reject(new AttemptError('agent-missing', 'the agent file on the host is missing or does not match its hash', true))
      const how = signal ? `was killed by ${signal}` : code === null ? 'lost its connection' : `exited with code ${code}`
      reject(new AttemptError('agent-exit', `the agent ${how} before the file was in place${stderrTail.trim() ? `: ${stderrTail.trim().split('\n').pop()}` : ''}`, true))
    })
  })
}

/** Connects (within the connect limit, given up when the run ends), checks the host, and puts the agent there. */
async function connectAndPrepare(ctx: HostRunContext, log: HostLog, forceUpload: boolean): Promise<SshConnection> {
  const { plan, spec } = ctx
  return ctx.connectLimit.run(async () => {
    throwIfEnded(ctx.signal)
    ctx.onState(spec.label, 'connecting')
    const c = await untilEnded(connectHost({ host: spec.host, user: spec.user, port: spec.port, label: spec.label }, ctx.ssh, (line) => log.write(line)), ctx.signal)
    try {
      throwIfEnded(ctx.signal)
      ctx.onState(spec.label, 'starting')
      const { uid } = await preflight(c, plan, log)
      const sftp = await c.sftp()
      try {
        await prepareWorkDir(sftp, plan, uid, log)
        await uploadAgent(sftp, plan, ctx.agent, log, forceUpload)
      } finally {
        sftp.end()
      }
      return c
    } catch (err) {
      c.close()
      throw err
    }
  })
}

async function attempt(ctx: HostRunContext, log: HostLog): Promise<{ session: AgentSession; done: AgentDone }> {
  const conn = await connectAndPrepare(ctx, log, false)
  try {
    return await startAgent(ctx, conn, log)
  } catch (err) {
    if (!(err instanceof AttemptError && err.kind === 'agent-missing')) throw err
    // Removed or damaged between the upload and the start (another run, a cleaner): upload it once more.
    log.write('agent file failed its hash check on the host; uploading it again')
    return startAgent(ctx, await connectAndPrepare(ctx, log, true), log)
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
  })
}

/** Runs one host to a settled state: success (agent seeding until released) or failure for good. */
export async function hostRun(ctx: HostRunContext): Promise<HostRun> {
  const { plan, spec } = ctx
  const log = new HostLog(spec.label, plan.logDir)
  const began = Date.now()
  const maxAttempts = plan.retry < 0 ? Infinity : plan.retry + 1
  let attempts = 0
  let last: AttemptError | undefined
  log.write(`host ${spec.label}: push ${plan.file} (${plan.size} bytes) to ${plan.destination}`)
  while (attempts < maxAttempts && !ctx.signal.aborted) {
    attempts++
    log.write(`attempt ${attempts}${Number.isFinite(maxAttempts) ? ` of ${maxAttempts}` : ''}`)
    try {
      const { session, done } = await attempt(ctx, log)
      ctx.onState(spec.label, 'done')
      const report: HostReport = {
        host: spec.label,
        status: 'ok',
        transferred: done.transferred,
        attempts,
        seconds: (Date.now() - began) / 1000,
        downloaded: done.downloaded,
        fromRunner: done.fromRunner,
        ...(done.via ? { runnerVia: done.via } : {}),
        logFile: log.file,
      }
      return {
        report,
        release: async () => {
          await session.finish('release')
          const exit = await session.waitExit()
          log.write(`released; agent exited${exit.signal ? ` by ${exit.signal}` : ` with code ${exit.code}`}`)
          log.close()
        },
      }
    } catch (err) {
      last = toAttemptError(err, spec.label)
      log.write(`attempt ${attempts} failed (${last.kind}): ${last.message}`)
      if (!last.retryable || ctx.signal.aborted) break
      if (attempts < maxAttempts) {
        const wait = Math.min(1000 * 2 ** (attempts - 1), 10_000)
        ctx.onState(spec.label, 'retrying', last.message)
        log.write(`retrying in ${wait / 1000} s`)
        await sleep(wait, ctx.signal)
      }
    }
  }
  const reason = ctx.signal.aborted ? String(ctx.signal.reason) : undefined
  const status: HostReport['status'] = reason === 'timeout' ? 'timed-out' : reason ? 'interrupted' : 'failed'
  const cause = last?.message ?? (reason === 'timeout' ? 'the overall --timeout ended before this host started' : `the run was interrupted (${reason}) before this host started`)
  log.write(`FAILED (${status}) after ${attempts} attempt(s): ${cause}`)
  log.close()
  ctx.onState(spec.label, 'failed', cause)
  return {
    report: {
      host: spec.label,
      status,
      transferred: false,
      attempts,
      seconds: (Date.now() - began) / 1000,
      downloaded: 0,
      fromRunner: 0,
      cause,
      kind: last?.kind ?? status,
      logFile: log.file,
    },
    release: async () => {},
  }
}
