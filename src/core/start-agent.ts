// Starting the agent on one host: the ways to the runner, the start message, and its events until the file is in place.
import { closeCause, ForwardRefused, shellCommand, type RemoteChannel, type SshConnection, type Tunnel } from './ssh/index.js'
import { AGENT_EXIT, ALIVE_SECONDS, MAX_LINE_BYTES, PROTOCOL_VERSION, lineReader, type AgentEvent, type RunnerRoute, type StartMessage, type TreeDelivery } from './protocol.js'
import { AGENT_ENV, AGENT_NODE_FLAGS, BOOTSTRAP } from './agent-bundle.js'
import { torrentFileFor, type FileTorrent } from './swarm/torrent.js'
import type { PrivateTracker } from './swarm/tracker.js'
import type { RunSeal } from '../engine/seal.js'
import type { HostLog } from './host-log.js'
import type { HostRunContext } from './host-run.js'
import { AttemptError, endedError } from './attempt.js'
import { fixWords } from './front-end.js'
import { openChannel } from './remote-folder.js'
import { AgentSession } from './agent-session.js'

/** The swarm every host joins. */
export interface SwarmInfo {
  torrent: FileTorrent
  tracker: PrivateTracker
  seederPort: number
  /** The seeder's peer id (hex), for the agents to tell the runner's wire by. */
  runnerId: string
  /** The run's secret (sent to each agent over its SSH session only, never logged) and encryption choice. */
  seal: RunSeal
  /** Set when a folder is pushed: how it lands. */
  tree?: TreeDelivery
  /** When the runner began to send (undefined while it holds its pieces for hosts being set up). */
  sendingSince(): number | undefined
}

const PERMANENT_AGENT_ERRORS = new Set(['no-space', 'not-writable', 'no-folder', 'not-a-file', 'read-only-fs', 'protocol', 'unsafe-folder', 'no-node', 'busy'])
/**
 * The direct way's head start before the agent tries the SSH one too. A connect in a datacenter takes
 * ms; a SYN lost on a congested link is sent again after 1 s, so with a 1 s head start one lost packet
 * sent the host through SSH (seen at 8 hosts on 4 Mbit/s links: that host then failed). 3 s outlasts
 * one retransmission; a runner behind a firewall that drops packets costs 3 s once per host.
 */
const PROBE_MS = 3000
/**
 * How long an agent waits for any word from the runner (a ping every PING_MS of agent-session.ts, the seeder's bytes, or a
 * piece verified from its peers, which shows the run alive) before it exits. A connection the runner
 * closes ends the agent at once (sshd closes its channel); this is for a runner that froze or lost its
 * path, which sshd notices late or never (ClientAlive is off by default). 90 s did not get more hosts of
 * 200 on 4 Mbit/s the file than 30 s (59 against 103 in one run each), so it stays 30 s.
 */
const AGENT_IDLE_TIMEOUT_S = 30

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
  if (address && way !== 'ssh') routes.push({ via: 'direct', seedPeer: formatPeer(address, swarm.seederPort), announce: swarm.tracker.urlFor(address) })
  if (way === 'direct') {
    if (!address) throw new AttemptError('unreachable', `this host is reached through ProxyCommand, so the runner has no address it can dial; set ${fixWords(ctx.plan.frontEnd).option('--runner-via')} to auto or ssh`, false)
    return { routes }
  }
  try {
    const tunnel = await conn.forwardToRunner({ seederPort: swarm.seederPort, trackerPort: swarm.tracker.port })
    routes.push({ via: 'ssh', seedPeer: formatPeer('127.0.0.1', tunnel.seederPort), announce: swarm.tracker.urlFor('127.0.0.1', tunnel.trackerPort) })
    log.write(`runner's seeder and tracker forwarded to the host's 127.0.0.1:${tunnel.seederPort} and :${tunnel.trackerPort} over SSH`)
    return { routes, tunnel }
  } catch (err) {
    if (!(err instanceof ForwardRefused)) throw err
    const why = `sshd refused to forward a port to the runner (${err.message})`
    if (way === 'ssh' || routes.length === 0) {
      throw new AttemptError('no-forwarding', `${why}; allow it in the host's sshd (AllowTcpForwarding yes or remote)${address ? ` or set ${fixWords(ctx.plan.frontEnd).option('--runner-via')} to direct` : ''}`, false)
    }
    log.write(`${why}: only the direct way (${address}) is left`)
    return { routes, noTunnel: why }
  }
}

/** What a finished agent reported. */
export interface AgentDone {
  transferred: boolean
  downloaded: number
  fromRunner: number
  via?: RunnerRoute['via']
}

/** Starts the agent and resolves once it reports the file in place; the session stays up for seeding. */
export async function startAgent(ctx: HostRunContext, conn: SshConnection, node: string, log: HostLog): Promise<{ session: AgentSession; done: AgentDone }> {
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
    throw endedError(ctx.signal, ctx.plan.frontEnd)
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
  // A runtime herd provided lives in the working folder: named from there after the cd.
  const nodeHere = node.startsWith(`${plan.remotePath}/`) ? `./${node.slice(plan.remotePath.length + 1)}` : node
  // `env`, not the shell's `export`: the login shell may be csh, which has none (a node path with `=` in
  // it would read as a setting: --node refuses one).
  const command = `cd -- ${shellCommand([plan.remotePath])} && exec ${shellCommand(['env', ...AGENT_ENV, nodeHere, ...AGENT_NODE_FLAGS, ...extraFlags, '-e', BOOTSTRAP, agent.remoteName, agent.sha256])}`
  let channel: RemoteChannel
  try {
    channel = await openChannel(conn, command, 20_000, () => new AttemptError('channel', 'sshd did not start the agent within 20 s (is the host overloaded, or sshd MaxSessions reached?)', true))
  } catch (err) {
    conn.close()
    throw err
  }
  const session = new AgentSession(conn, channel, log)
  const start: StartMessage = {
    t: 'start',
    protocol: PROTOCOL_VERSION,
    torrent: torrentFileFor(swarm.torrent, ways.routes[0]!.announce).toString('base64'),
    destination: plan.destination,
    sha256: swarm.torrent.sha256,
    size: swarm.torrent.size,
    mode: plan.mode,
    tree: swarm.tree,
    attributes: plan.attributes,
    routes: ways.routes,
    probeMs: PROBE_MS,
    runnerId: swarm.runnerId,
    secret: swarm.seal.secret.toString('base64'),
    encrypt: swarm.seal.encrypt,
    idleTimeoutSeconds: AGENT_IDLE_TIMEOUT_S,
    progressMs: 1000,
    host: ctx.spec.label,
    spread: ctx.spread,
    limitRate: plan.limitRate,
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
      void session.finish('abort', String(ctx.signal.reason ?? 'interrupted')).then(() => reject(endedError(ctx.signal, ctx.plan.frontEnd)))
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
      // Waiting for the runner to send (hosts still being set up) is not a stall.
      const since = swarm.sendingSince()
      if (!settled && movedAt !== undefined && since !== undefined && moved.have < swarm.torrent.size && Date.now() - Math.max(movedAt, since) > stallMs) {
        settled = true
        clearInterval(watchdog)
        ctx.signal.removeEventListener('abort', onAbort)
        const p = session.lastProgress
        const where = via === 'ssh' ? 'through its SSH connection' : `directly at ${ways.routes[0]?.seedPeer}`
        const cause = `no data arrived for ${ctx.plan.stallSeconds} s (${Math.max(0, moved.have)} of ${swarm.torrent.size} bytes verified, ${p?.peers ?? 0} peers, the runner reached ${where}); check that the hosts can reach each other on the agents' ports, or raise ${fixWords(ctx.plan.frontEnd).option('--stall-timeout')}`
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
            case 'alive':
              session.agentPid ??= event.pid
              break
            case 'ready':
              via = event.via
              session.agentPid = event.pid
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
                event.code === 'unreachable'
                  ? `${event.message}${ways.noTunnel ? `, and ${ways.noTunnel}` : ''}; ${ways.noTunnel ? "open the runner's ports to this host or allow TCP forwarding in its sshd (AllowTcpForwarding)" : "open the runner's ports to this host"}`
                  : event.code === 'runner-silent'
                    ? `${event.message} (the way from the runner stalled: is its uplink full?); run again with ${fixWords(ctx.plan.frontEnd).option('--retry')}, or leave room on the runner's link with ${fixWords(ctx.plan.frontEnd).option('--limit-rate')}`
                    : event.message,
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
        {
          maxBytes: MAX_LINE_BYTES.toRunner,
          onTooLong: (bytes) => {
            const cause = `the agent's output ran ${bytes} bytes without a line end (at most ${MAX_LINE_BYTES.toRunner / 1048576} MiB): that is not herd's protocol; does a shell start-up file on the host print without end?`
            log.write(cause)
            agentError ??= new AttemptError('protocol', cause, false)
            void session.finish('abort', 'protocol')
          },
        },
      ),
    )
    void session.waitExit().then(async ({ code, signal }) => {
      ctx.signal.removeEventListener('abort', onAbort)
      // No exit status: the connection went; why (a dead link's keepalives, a reset) names the cause.
      const lost = !settled && code === null && !signal ? await closeCause(conn, 1000) : undefined
      conn.close()
      if (settled) return
      settled = true
      if (agentError) return reject(agentError)
      if (code === AGENT_EXIT.missingAgent) return reject(new AttemptError('agent-missing', 'the agent file on the host is missing or does not match its hash', true))
      const how = signal ? `was killed by ${signal}` : code === null ? 'lost its connection' : `exited with code ${code}`
      const why = lost ?? stderrTail.trim().split('\n').pop()
      reject(new AttemptError('agent-exit', `the agent ${how} before the file was in place${why ? `: ${why}` : ''}`, true))
    })
  })
}
