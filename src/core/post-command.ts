// The command a deploy runs on each host once its copy is in place (`--post-command`): output to the host's log.
import { shellCommand, type SshConnection } from './ssh/index.js'
import type { HostLog } from './host-log.js'
import type { Plan } from './plan.js'
import type { HostReport } from './report.js'
import { execCollect } from './remote-folder.js'

/** How long a post-command may run: a service restart or a cache warm-up, not a second deploy. */
const POST_COMMAND_TIMEOUT_MS = 30 * 60_000

/**
 * Runs the plan's post-command on the host with the destination in $HERD_DEST, writes its output to the
 * host's log, and turns a non-zero exit into a failed report with the code and the command's last lines.
 */
export async function runPostCommand(conn: SshConnection, plan: Plan, report: HostReport, log: HostLog): Promise<void> {
  const command = plan.postCommand!
  const began = Date.now()
  log.write(`post-command: ${command}`)
  const r = await execCollect(conn, shellCommand(['env', `HERD_DEST=${plan.destination}`, 'sh', '-c', command]), { timeoutMs: POST_COMMAND_TIMEOUT_MS }).catch((err: Error) => ({ code: null, signal: undefined, stdout: '', stderr: err.message }))
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trimEnd()).filter(Boolean)
  for (const line of lines) log.write(`post-command says: ${line}`)
  const seconds = ((Date.now() - began) / 1000).toFixed(1)
  if (r.code === 0) {
    log.write(`post-command exited 0 in ${seconds} s`)
    return
  }
  const how = r.signal ? `was killed by ${r.signal}` : r.code === null ? 'did not finish' : `exited with ${r.code}`
  const tail = lines.slice(-3).join(' | ')
  log.write(`post-command ${how} after ${seconds} s`)
  Object.assign(report, {
    status: 'failed',
    kind: 'post-command',
    postCommandExit: r.code ?? undefined,
    cause: `the file is in place, but the post-command ${how}${tail ? `: ${tail}` : ''}; see the host's log`,
  } satisfies Partial<HostReport>)
}
