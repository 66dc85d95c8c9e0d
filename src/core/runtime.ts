// A Node runtime for hosts without a usable one: the runner's own node where the platform matches,
// gzipped once per run, verified by hash on the host and kept in the private working folder for later runs.
import crypto from 'node:crypto'
import fs from 'node:fs'
import zlib from 'node:zlib'
import { promisify } from 'node:util'
import { shellCommand, type SshConnection } from './ssh/index.js'
import type { HostLog } from './host-log.js'
import type { Plan } from './plan.js'
import { AttemptError } from './attempt.js'
import { execCollect } from './remote-folder.js'
import { fixWords } from './front-end.js'

/** The runtime the runner can give: its own node binary, for hosts of its platform. */
interface Runtime {
  version: string
  /** `linux-x64`, `linux-arm64`. */
  platform: string
  sha256: string
  /** The file's name in the working folder. */
  remoteName: string
  gzipped: Buffer
}

const gzip = promisify(zlib.gzip)
let prepared: Promise<Runtime | undefined> | undefined

/** The runner's node as a runtime (once per run), or undefined where it can't serve a Linux glibc host. */
function runnersRuntime(): Promise<Runtime | undefined> {
  prepared ??= (async () => {
    const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime
    if (process.platform !== 'linux' || !glibc) return undefined
    const bytes = await fs.promises.readFile(process.execPath)
    const sha256 = crypto.createHash('sha256').update(bytes).digest('hex')
    // Level 1: most of the gain (about 40 %) in a fraction of level 9's time; done once, off the loop.
    const gzipped = await gzip(bytes, { level: 1 })
    return { version: process.version, platform: `linux-${process.arch}`, sha256, remoteName: `node-${process.version}-linux-${process.arch}-${sha256.slice(0, 12)}`, gzipped }
  })()
  return prepared
}

/** `uname -m` as Node names architectures. */
const ARCH: Record<string, string> = { x86_64: 'x64', amd64: 'x64', aarch64: 'arm64', arm64: 'arm64' }

/**
 * Puts a runtime for this host's platform into its working folder unless it is there already, and
 * returns its path (relative to the login's home, like --remote-path) and the bytes it cost the runner.
 * `why` is what was wrong with the host's own node, for the message when no runtime fits.
 */
/** The fix for a host without a usable node, with the front end's way to name one (--node) where it has one. */
function installNode(plan: Plan): string {
  const node = fixWords(plan.frontEnd).option('--node')
  return `install Node.js 20 or newer there${node ? `, or give its path with ${node}` : ''}`
}

export async function provideRuntime(conn: SshConnection, plan: Plan, why: string, log: HostLog): Promise<{ node: string; uploaded: number }> {
  const probe = await execCollect(conn, shellCommand(['sh', '-c', 'uname -sm; getconf GNU_LIBC_VERSION 2>/dev/null || echo no-glibc']))
  const [kernel = '', machine = ''] = probe.stdout.split('\n')[0]!.trim().split(/\s+/)
  const glibc = !/no-glibc/.test(probe.stdout)
  const platform = `${kernel.toLowerCase()}-${ARCH[machine] ?? machine}`
  const runtime = await runnersRuntime()
  if (!runtime || platform !== runtime.platform || !glibc) {
    const have = runtime ? `${runtime.platform} (glibc)` : `none (the runner is ${process.platform}-${process.arch})`
    throw new AttemptError('no-node', `${why}, and herd has no Node runtime for this host's ${platform}${glibc ? '' : ' without glibc'} (it can give: ${have}); ${installNode(plan)}`, false)
  }
  const node = `${plan.remotePath}/${runtime.remoteName}`
  const present = await execCollect(conn, shellCommand(['test', '-x', node]))
  if (present.code === 0) {
    log.write(`Node runtime ${runtime.remoteName} already on the host`)
    return { node, uploaded: 0 }
  }
  const began = Date.now()
  // Unpacked under a temporary name, its hash checked on the host, then renamed: a damaged copy never runs.
  const install =
    'umask 077; cd -- "$1" || exit 4; t="$2.$$.tmp"; ' +
    'if gzip -dc > "$t" && test "$(sha256sum "$t" | cut -d " " -f 1)" = "$3" && chmod 700 "$t" && mv -f -- "$t" "$2"; then exit 0; fi; rm -f -- "$t"; exit 5'
  const put = await execCollect(conn, shellCommand(['sh', '-c', install, 'sh', plan.remotePath, runtime.remoteName, runtime.sha256]), { input: runtime.gzipped, timeoutMs: 600_000 })
  if (put.code !== 0) {
    throw new AttemptError('no-node', `${why}; herd's Node runtime could not be installed in ${plan.remotePath} (${put.code === 5 ? 'its hash did not match after unpacking, or gzip/sha256sum is missing' : put.stderr.trim().split('\n').pop() || `exit ${put.code}`}); ${installNode(plan)}`, true)
  }
  log.write(`uploaded Node runtime ${runtime.remoteName} (${runtime.gzipped.length} bytes gzipped, hash checked on the host) in ${Date.now() - began} ms`)
  return { node, uploaded: runtime.gzipped.length }
}
