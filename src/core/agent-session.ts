// A running agent on one host as the runner holds it: its SSH channel, the runner's pings, and its end.
import { shellCommand, type RemoteChannel, type SshConnection } from './ssh/index.js'
import { encodeLine, type ProgressEvent } from './protocol.js'
import type { HostLog } from './host-log.js'
import { execCollect } from './remote-folder.js'

/** The runner pings every agent this often: the agent's sign that the runner is alive. */
const PING_MS = 5000
/** How long an agent has to exit after `release` or `abort` before it is killed. */
const AGENT_EXIT_WAIT_MS = 10_000
/** sh script: SIGKILL the process $1 if its command line is still the agent's (process.title 'herd-agent'). */
const KILL_AGENT = 'case "$(ps -o args= -p "$1" 2>/dev/null || tr "\\0" " " 2>/dev/null < "/proc/$1/cmdline")" in herd-agent*) kill -KILL "$1" && echo killed ;; esac'

/** A running agent on one host, from start message to exit. */
export class AgentSession {
  private pinger?: NodeJS.Timeout
  private exited: Promise<{ code: number | null; signal: string | null }>
  lastProgress?: ProgressEvent
  /** The agent's PID on the host, from its first `alive`. */
  agentPid?: number

  constructor(readonly conn: SshConnection, readonly channel: RemoteChannel, private readonly log: HostLog) {
    this.exited = new Promise((resolve) => {
      let code: number | null = null
      let signal: string | null = null
      channel.on('exit', (c: number | null, s?: string) => {
        code = c
        signal = s ?? null
      })
      channel.on('close', (c?: number | null, s?: string) => {
        clearInterval(this.pinger)
        if (code === null && typeof c === 'number') code = c
        signal ??= s ?? null
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

  /**
   * Sends `release` or `abort`, waits a bounded time for the agent to exit, then closes the connection.
   * An agent still there then (frozen, or node hanging in its own shutdown: nodejs/node#54918) is killed
   * over the same connection, so that nothing of herd's stays running on the host.
   */
  async finish(message: 'release' | 'abort', reason = ''): Promise<void> {
    this.send(message === 'release' ? { t: 'release' } : { t: 'abort', reason })
    this.channel.end()
    const exited = await Promise.race([this.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), AGENT_EXIT_WAIT_MS).unref())])
    clearInterval(this.pinger)
    if (!exited && this.agentPid !== undefined) await this.kill(this.agentPid, message)
    this.conn.close()
  }

  private async kill(pid: number, after: 'release' | 'abort'): Promise<void> {
    // Only a process that still is an agent: its PID may have gone to another in the meantime.
    const r = await execCollect(this.conn, shellCommand(['sh', '-c', KILL_AGENT, 'sh', String(pid)]), { timeoutMs: 5000 }).catch((err: Error) => ({ code: null, stdout: '', stderr: err.message }))
    const outcome = r.stdout.includes('killed') ? 'killed it' : r.code === 0 ? 'it was gone when looked for' : `it could not be killed: ${r.stderr.trim() || `exit ${r.code}`}`
    this.log.write(`the agent (pid ${pid}) had not exited ${AGENT_EXIT_WAIT_MS / 1000} s after ${after === 'release' ? 'its release' : 'it was stopped'}; ${outcome}`)
  }
}
