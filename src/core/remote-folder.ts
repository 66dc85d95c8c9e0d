// The host before the agent runs: node, the private working folder and the agent file in it, through
// plain shell commands that any SSH transport runs the same way (no SFTP subsystem needed).
import { closeCause, shellCommand, type RemoteChannel, type SshConnection } from './ssh/index.js'
import type { AgentBundle } from './agent-bundle.js'
import type { HostLog } from './host-log.js'
import type { Plan } from './plan.js'
import { AttemptError } from './attempt.js'
import { fixWords } from './front-end.js'

/**
 * Starts a remote command, within `timeoutMs`: a server that never answers the channel's opening must not
 * hold the host (keepalives only catch a dead connection). A channel that opens too late is closed.
 */
export async function openChannel(conn: SshConnection, command: string, timeoutMs: number, late: () => Error): Promise<RemoteChannel> {
  let timer: NodeJS.Timeout | undefined
  const open = conn.exec(command)
  return Promise.race([
    open,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void open.then((ch) => ch.close(), () => {})
        reject(late())
      }, timeoutMs)
    }),
  ]).finally(() => clearTimeout(timer))
}

/**
 * Runs a short command (with `input` on its standard input) and collects its output. Rejects when the
 * connection goes meanwhile (no exit status), naming why.
 */
export async function execCollect(conn: SshConnection, command: string, opts: { input?: Buffer; timeoutMs?: number } = {}): Promise<{ code: number | null; signal?: string; stdout: string; stderr: string }> {
  const timeoutMs = opts.timeoutMs ?? 20_000
  const began = Date.now()
  const late = () => new AttemptError('timeout', `'${command.slice(0, 60)}' did not finish in ${timeoutMs / 1000} s`, true)
  const channel = await openChannel(conn, command, timeoutMs, late)
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    let code: number | null = null
    let signal: string | undefined
    const timer = setTimeout(() => {
      channel.close()
      reject(late())
    }, Math.max(0, timeoutMs - (Date.now() - began)))
    channel.on('data', (d: Buffer) => (stdout += d.toString()))
    channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    channel.on('exit', (c: number | null, s?: string) => {
      code = c
      signal = s
    })
    channel.on('close', (c?: number | null, s?: string) => {
      clearTimeout(timer)
      if (code === null && typeof c === 'number') code = c
      signal ??= s
      if (code !== null || signal) return resolve({ code, signal, stdout, stderr })
      void closeCause(conn, 1000).then((lost) =>
        lost ? reject(new AttemptError('connect', `the connection was lost: ${lost}`, true)) : resolve({ code, signal, stdout, stderr }),
      )
    })
    channel.end(opts.input)
  })
}

/** The login's uid on the host (-1 when `id` says nothing usable). */
export async function loginUid(conn: SshConnection): Promise<number> {
  const r = await execCollect(conn, 'id -u')
  const uid = Number(/^(\d+)\s*$/m.exec(r.stdout)?.[1] ?? -1)
  return Number.isInteger(uid) ? uid : -1
}

/**
 * Checks that `node` runs on the host and is 20 or newer; AttemptError 'no-node' otherwise. Decided by
 * the exit code and a marker line, not by words: start-up files may print anything.
 */
export async function checkNode(conn: SshConnection, node: string, log: HostLog): Promise<string> {
  const probe = "process.stdout.write('\\nHERD-NODE '+process.version+'\\n')"
  const r = await execCollect(conn, shellCommand([node, '-e', probe]))
  const version = /^HERD-NODE (v\d+\S*)$/m.exec(r.stdout)?.[1]
  if (!version) {
    const why = r.code === 127 ? 'was not found' : r.code === 126 ? 'is not executable' : `did not run (exit ${r.code}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()!.slice(0, 200)}` : ''})`
    throw new AttemptError('no-node', `'${node}' ${why} on the host`, false)
  }
  const major = Number(/^v(\d+)/.exec(version)?.[1] ?? 0)
  if (major < 20) throw new AttemptError('no-node', `node on the host is ${version}; herd's agent needs Node.js 20 or newer`, false)
  log.write(`node ${version} on the host (${node})`)
  return version
}


/**
 * Creates the working folder (0700, parents too) when missing and lists it as it is: `ls -ldn` shows a
 * symbolic link as one, with the numeric owner. One line, no `!`: csh and tcsh login shells run it too.
 */
const INSPECT_FOLDER =
  'umask 077; d=$1; if test -e "$d" || test -h "$d"; then :; else mkdir -p -- "$d" || exit 3; echo created; fi; ' +
  'ls -ldn -- "$d"; if test -f "$d/$2"; then echo agent $(wc -c < "$d/$2"); fi'

/** Mode bits of an `ls -l` permission string (`drwxrwxrwt` → 0o777 plus sticky). */
function modeOf(perm: string): number {
  let mode = 0
  for (let i = 1; i <= 9; i++) if (perm[i] !== '-' && perm[i] !== 'S' && perm[i] !== 'T') mode |= 1 << (9 - i)
  return mode
}

/**
 * Creates the working folder 0700 if needed, refuses one that others could tamper with (a symbolic
 * link, another owner, writable by group or others), and uploads the agent under its hash name unless
 * that exact build is there (`force`: upload anyway). The bootstrap checks the agent's hash before it runs.
 */
export async function prepareRemote(conn: SshConnection, plan: Plan, uid: number, agent: AgentBundle, log: HostLog, force: boolean): Promise<void> {
  const where = `working folder ${plan.remotePath}`
  // The fix in the words of the front end in use: --remote-path, or its input.
  const another = `set ${fixWords(plan.frontEnd).option('--remote-path')} to another folder`
  const r = await execCollect(conn, shellCommand(['sh', '-c', INSPECT_FOLDER, 'sh', plan.remotePath, agent.remoteName]))
  const lines = r.stdout.split('\n').map((l) => l.trim()).filter(Boolean)
  const listing = lines.find((l) => /^[-dlcbps][-rwxsStT]{9}/.test(l))
  if (r.code !== 0 || !listing) {
    if (r.code !== 3) throw new AttemptError('channel', `could not inspect ${where}: ${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''} (output: ${JSON.stringify(r.stdout.slice(0, 200))})`, true)
    throw new AttemptError('unsafe-folder', `cannot create ${where} (${r.stderr.trim().split('\n').pop() || `exit ${r.code}`}); ${another}, one you can write in`, false)
  }
  if (lines.includes('created')) log.write(`created ${plan.remotePath} (0700)`)
  const [perm = '', , owner = ''] = listing.split(/\s+/)
  if (perm.startsWith('l')) throw new AttemptError('unsafe-folder', `${where} is a symbolic link; herd refuses it (replace it with a real folder, or ${another})`, false)
  if (!perm.startsWith('d')) throw new AttemptError('unsafe-folder', `${where} is not a folder; ${another}`, false)
  if (uid >= 0 && Number(owner) !== uid) throw new AttemptError('unsafe-folder', `${where} is owned by uid ${owner}, not by the login user (uid ${uid}); herd refuses it (${another})`, false)
  const mode = modeOf(perm)
  if ((mode & 0o022) !== 0) throw new AttemptError('unsafe-folder', `${where} is writable by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 700 on it, or ${another}`, false)
  const present = Number(/^agent (\d+)$/m.exec(r.stdout)?.[1] ?? -1)
  if (!force && present === agent.bytes.length) {
    log.write(`agent ${agent.remoteName} already on the host`)
    return
  }
  // Gzipped under a temporary name, then renamed: the bootstrap unpacks it and checks its hash.
  const began = Date.now()
  const put = await execCollect(conn, shellCommand(['sh', '-c', 'umask 077; cd -- "$1" && t="$2.gz.$$.tmp" && cat > "$t" && mv -f -- "$t" "$2.gz"', 'sh', plan.remotePath, agent.remoteName]), { input: agent.gzipped })
  if (put.code !== 0) throw new AttemptError('upload', `could not upload the agent into ${where} (${put.stderr.trim().split('\n').pop() || `exit ${put.code}`})`, true)
  log.write(`uploaded agent ${agent.remoteName} (${agent.gzipped.length} bytes gzipped) in ${Date.now() - began} ms`)
}
