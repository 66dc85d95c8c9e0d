// One host's life: connect → check the host → agent → events → retry; every step goes to the host's log.
import { setTimeout as sleep } from 'node:timers/promises'
import { connectHost, SshError, type SshConnection, type SshSettings } from './ssh/index.js'
import type { AgentBundle } from './agent-bundle.js'
import type { ProgressEvent } from './protocol.js'
import type { HostSpec } from './hosts.js'
import type { Plan } from './plan.js'
import type { HostReport } from './report.js'
import { HostLog } from './host-log.js'
import type { Limit } from './limit.js'
import { AttemptError, endedError, throwIfEnded } from './attempt.js'
import { fixWords, type FrontEnd } from './front-end.js'
import { checkNode, loginUid, prepareRemote } from './remote-folder.js'
import { provideRuntime } from './runtime.js'
import { runPostCommand } from './post-command.js'
import { startAgent, type AgentDone, type SwarmInfo } from './start-agent.js'
import type { AgentSession } from './agent-session.js'

export type { SwarmInfo } from './start-agent.js'

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
  /** With --post-batch: runs the post-command on this host (the report says how it went); absent otherwise. */
  post?: () => Promise<void>
  /** Tells the agent to stop seeding, waits for it to exit, closes the connection. */
  release(): Promise<void>
}

const RETRYABLE_SSH = new Set(['connect', 'timeout', 'jump', 'channel'])

const CONNECT_KINDS = new Set(['connect', 'timeout', 'resolve', 'jump'])

function toAttemptError(err: unknown, label: string): AttemptError {
  if (err instanceof AttemptError) return err
  if (err instanceof SshError) {
    // The report names the host already; say plainly when we never got in.
    const what = err.message.startsWith(`${label}: `) ? err.message.slice(label.length + 2) : err.message
    return new AttemptError(err.kind, CONNECT_KINDS.has(err.kind) ? `could not connect: ${what}` : what, RETRYABLE_SSH.has(err.kind))
  }
  // Not retried: a bug would repeat on every attempt (and forever under --retry -1).
  return new AttemptError('internal', `${(err as Error)?.message ?? String(err)} (an internal error: please report it with the host's log)`, false)
}

/** Waits for a connection, but gives up at once when the run ends; one that completes later is closed. */
function untilEnded(connecting: Promise<SshConnection>, signal: AbortSignal, frontEnd: FrontEnd): Promise<SshConnection> {
  if (signal.aborted) {
    void connecting.then((c) => c.close(), () => {})
    return Promise.reject(endedError(signal, frontEnd))
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      void connecting.then((c) => c.close(), () => {})
      reject(endedError(signal, frontEnd))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    connecting.then(
      (c) => {
        signal.removeEventListener('abort', onAbort)
        if (signal.aborted) {
          c.close()
          return reject(endedError(signal, frontEnd))
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

/** Connects (within the connect limit, given up when the run ends), checks the host, and puts the agent there. */
/** A prepared host: its connection, the node the agent runs with, what the runtime upload cost. */
interface Prepared {
  conn: SshConnection
  node: string
  runtimeBytes: number
}

async function connectAndPrepare(ctx: HostRunContext, log: HostLog, forceUpload: boolean): Promise<Prepared> {
  const { plan, spec } = ctx
  return ctx.connectLimit.run(async () => {
    throwIfEnded(ctx.signal, ctx.plan.frontEnd)
    ctx.onState(spec.label, 'connecting')
    const c = await untilEnded(connectHost(spec, ctx.ssh, (line) => log.write(line)), ctx.signal, plan.frontEnd)
    try {
      throwIfEnded(ctx.signal, ctx.plan.frontEnd)
      ctx.onState(spec.label, 'starting')
      await prepareRemote(c, plan, await loginUid(c), ctx.agent, log, forceUpload)
      let node = plan.node
      let runtimeBytes = 0
      try {
        await checkNode(c, node, log)
      } catch (err) {
        if (!(err instanceof AttemptError && err.kind === 'no-node')) throw err
        // No usable node there: bring one (cached in the working folder for later runs).
        log.write(`${err.message}: providing a Node runtime`)
        ;({ node, uploaded: runtimeBytes } = await provideRuntime(c, plan, err.message, log))
        await checkNode(c, node, log)
      }
      return { conn: c, node, runtimeBytes }
    } catch (err) {
      c.close()
      throw err
    }
  })
}

async function attempt(ctx: HostRunContext, log: HostLog, spent: { runtimeBytes: number }): Promise<{ session: AgentSession; done: AgentDone }> {
  const first = await connectAndPrepare(ctx, log, false)
  spent.runtimeBytes += first.runtimeBytes
  try {
    return await startAgent(ctx, first.conn, first.node, log)
  } catch (err) {
    if (!(err instanceof AttemptError && err.kind === 'agent-missing')) throw err
    // Removed or damaged between the upload and the start (another run, a cleaner): upload it once more.
    log.write('agent file failed its hash check on the host; uploading it again')
    const again = await connectAndPrepare(ctx, log, true)
    spent.runtimeBytes += again.runtimeBytes
    return startAgent(ctx, again.conn, again.node, log)
  }
}

/** Runs one host to a settled state: success (agent seeding until released) or failure for good. */
export async function hostRun(ctx: HostRunContext): Promise<HostRun> {
  const { plan, spec } = ctx
  const log = new HostLog(spec.label, plan.logDir)
  const began = Date.now()
  const maxAttempts = plan.retry < 0 ? Infinity : plan.retry + 1
  let attempts = 0
  let last: AttemptError | undefined
  // Bytes of Node runtime this host cost the runner's link, over every attempt.
  const spent = { runtimeBytes: 0 }
  log.write(`host ${spec.label}: push ${plan.file} (${plan.size} bytes) to ${plan.destination}`)
  while (attempts < maxAttempts && !ctx.signal.aborted) {
    attempts++
    log.write(`attempt ${attempts}${Number.isFinite(maxAttempts) ? ` of ${maxAttempts}` : ''}`)
    try {
      const { session, done } = await attempt(ctx, log, spent)
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
        ...(spent.runtimeBytes ? { runtimeBytes: spent.runtimeBytes } : {}),
        logFile: log.file,
      }
      // The post-command: now, or in the run's batches once the file is everywhere.
      const post = plan.postCommand ? () => runPostCommand(session.conn, plan, report, log).then(() => { if (report.status !== 'ok') ctx.onState(spec.label, 'failed', report.cause) }) : undefined
      if (post && plan.postBatch === undefined) await post()
      return {
        report,
        ...(post && plan.postBatch !== undefined ? { post } : {}),
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
        // Cut short when the run ends: the loop then stops.
        await sleep(wait, undefined, { signal: ctx.signal }).catch(() => {})
      }
    }
  }
  const reason = ctx.signal.aborted ? String(ctx.signal.reason) : undefined
  const status: HostReport['status'] = reason === 'timeout' ? 'timed-out' : reason ? 'interrupted' : 'failed'
  const cause = last?.message ?? (reason === 'timeout' ? `the time limit (${fixWords(plan.frontEnd).option('--timeout')}) ended before this host started` : `the run was interrupted (${reason}) before this host started`)
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
      ...(spent.runtimeBytes ? { runtimeBytes: spent.runtimeBytes } : {}),
      logFile: log.file,
    },
    release: async () => {},
  }
}
