// Turns front-end options into a validated Plan: every input check lives here, one message per mistake.
import fs from 'node:fs'
import path from 'node:path'
import ssh2 from 'ssh2'
import { HostParseError, parseHostList, parseHostsText, portNumber, type HostSpec } from './hosts.js'
import { TreeError, payloadSizeOf, walkTree } from '../engine/tree.js'
import { pieceLengthFor } from './swarm/torrent.js'
import { BLOCK } from '../engine/store.js'
import { canOfferKey } from './ssh/key-available.js'
import { fixWords, type FrontEnd } from './front-end.js'

// ssh2 is CommonJS: take utils from its default export so unbundled ESM imports work too.
const sshUtils = ssh2.utils

/** Options as a front end gathers them (strings where the user typed strings). */
export interface HerdOptions {
  /** Local file or folder to push. */
  file: string
  /** Absolute path of the file (or folder) on every host. */
  destination: string
  /** With a folder: keep this many releases, `current` linking to the newest (absent: the folder is swapped in). */
  releases?: number | string
  /** The file's mode on every host, octal (e.g. 0640); default: a replaced file's own, else the local mode without group/other write. */
  mode?: string
  /** Owner (name or uid) of the file, or of a folder's every entry; default: a replaced file's own, else the login. */
  owner?: string
  /** Group (name or gid), as for owner. */
  group?: string
  /** A herd.py hosts file: one host per line. */
  hostsFile?: string
  /** Hosts separated by commas or white space. */
  hostList?: string
  /** Hosts file text (standard input, or a multi-line Action input). */
  hostsText?: string
  /** Extra attempts per host after a failure; -1 retries until success or the timeout. */
  retry?: number | string
  /** Tracker port or range `LOW-HIGH`. */
  port?: number | string
  /** Working folder on each host for the agent (relative paths are under the user's home). */
  remotePath?: string
  /** Folder for one log file per host. */
  logDir?: string
  /** Overall time limit in seconds. */
  timeout?: number | string
  /** SSH connections being opened at once. */
  concurrency?: number | string
  /** Identity files tried before the ssh-agent and the config's. */
  identityFiles?: string[]
  /** known_hosts files replacing the config's UserKnownHostsFile. */
  knownHostsFiles?: string[]
  /** strict (default): unknown or changed host keys fail; accept-new: unknown keys are added, changed still fail. */
  hostKeyPolicy?: string
  /**
   * Encrypt the file between peers (default true). false sends it in the clear, for trusted networks
   * only: peers still prove the run's secret and every piece is still verified.
   */
  encrypt?: boolean
  /** Remote user when neither the host nor ssh config names one. */
  user?: string
  /** Passphrase of encrypted identity files. */
  passphrase?: string
  /** node on the hosts. */
  node?: string
  /** OpenSSH client config file (default ~/.ssh/config). */
  sshConfig?: string
  /**
   * How hosts reach the runner's tracker and seeder: `direct` (TCP to the runner's address), `ssh`
   * (through each host's own SSH connection), `auto` (default: direct, else through SSH).
   */
  runnerVia?: string
  /** Seconds a host may go without a verified byte before it fails (default 60). */
  stallTimeout?: number | string
  /** SSH client: auto (default: built-in, OpenSSH where the host's config needs it), builtin, openssh. */
  sshClient?: string
  /** Shell command run on each host once its copy is in place, with the destination in $HERD_DEST. */
  postCommand?: string
  /** Run the post-command on at most this many hosts at a time, once the file is everywhere. */
  postBatch?: number | string
  /** Cap on each host's upload and download and the runner's upload, as curl's --limit-rate: `50M`, `200K`, `1G` (1024-based), bytes; 0 or empty: none. */
  limitRate?: string
  /** The front end in use: its flags and inputs are what messages name (default the herd command's). */
  frontEnd?: FrontEnd
}

/** A validated run: types are exact, files exist, hosts parsed. */
export interface Plan {
  /** The local file or folder, absolute. */
  file: string
  /** Bytes to move: the file's size, or about the size of a folder's payload. */
  size: number
  /** The file's mode, or the folder's. */
  mode: number
  /** A folder is pushed: its tree travels as one tar payload and is switched in whole on each host. */
  tree: boolean
  /** With a folder: releases kept under the destination, `current` linking to the newest. */
  releases?: number
  /** What --mode, --owner, --group ask of the delivered file (or a folder's entries); absent: the defaults. */
  attributes?: { mode?: number; owner?: string; group?: string }
  destination: string
  hosts: HostSpec[]
  /** Extra attempts; -1 = until success or timeout. */
  retry: number
  ports: [number, number]
  remotePath: string
  logDir?: string
  timeoutSeconds?: number
  concurrency: number
  identityFiles: string[]
  knownHostsFiles: string[]
  hostKeyPolicy: 'strict' | 'accept-new'
  /** Peer records encrypted (AES-256-GCM); false only when the user opted out. */
  encrypt: boolean
  user?: string
  passphrase?: string
  node: string
  sshConfig?: string
  /** How hosts reach the runner's tracker and seeder. */
  runnerVia: RunnerVia
  /** Seconds without a verified byte after which a host's attempt fails (and is retried under --retry). */
  stallSeconds: number
  /** Which SSH client carries each host's session. */
  sshClient: 'auto' | 'builtin' | 'openssh'
  /** Run on each host once its copy is in place (absent: none). */
  postCommand?: string
  /** With a post-command: at most this many hosts run it at once, after every host settled (absent: each as soon as it is done). */
  postBatch?: number
  /** Bytes per second each host may receive and send, and the runner send (absent: no limit). */
  limitRate?: number
  /** Whose flags and inputs the messages name. */
  frontEnd: FrontEnd
}

/** direct: hosts dial the runner; ssh: through each host's SSH connection; auto: direct, else SSH. */
export type RunnerVia = 'auto' | 'direct' | 'ssh'

/** A mistake in the input: `input` names the option, the message says the fix. Exit code 2. */
export class PlanError extends Error {
  constructor(readonly input: string, message: string) {
    super(`${input}: ${message}`)
  }
}

export const DEFAULTS = {
  retry: 0,
  // A range, so that two runs on one runner (two CI jobs) each find a free port.
  port: '8998-9097',
  remotePath: '.cache/herd-action',
  concurrency: 32,
  node: 'node',
  runnerVia: 'auto',
  sshClient: 'auto',
  stallTimeout: 60,
} as const

/** A whole number from min to max written as digits (with a sign when min < 0); undefined for anything else. */
export function wholeNumberIn(text: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (!/^-?\d+$/.test(text)) return undefined
  const n = Number(text)
  return n >= min && n <= max ? n : undefined
}

function wholeNumber(input: string, value: number | string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined || value === '') return fallback
  const text = String(value).trim()
  const n = wholeNumberIn(text, min, max)
  if (n === undefined) throw new PlanError(input, `'${text}' is not a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ' up'}; give one`)
  return n
}

export function parsePorts(value: number | string | undefined): [number, number] {
  const text = String(value ?? DEFAULTS.port).trim()
  const [lowText = '', highText = lowText, ...more] = text.split('-')
  const low = portNumber(lowText)
  const high = portNumber(highText)
  if (low === undefined || high === undefined || more.length > 0) throw new PlanError('--port', `'${text}' is not a port (1-65535) or a range LOW-HIGH; give one, e.g. 8998 or 8998-9097`)
  if (low > high) throw new PlanError('--port', `'${text}' is a range with LOW > HIGH; write the lower port first: ${high}-${low}`)
  return [low, high]
}

function readableFile(input: string, file: string, whatName: string): fs.Stats {
  // `local file: /x does not exist`, not `local file: local file /x does not exist`.
  const what = whatName === input ? '' : `${whatName} `
  let st: fs.Stats
  try {
    st = fs.statSync(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new PlanError(input, code === 'ENOENT' ? `${what}${file} does not exist; check the path` : `${what}${file} cannot be read (${code}); check its permissions`)
  }
  if (st.isDirectory()) throw new PlanError(input, `${what}${file} is a directory; give a file`)
  if (!st.isFile()) throw new PlanError(input, `${what}${file} is not a regular file; give a file`)
  try {
    fs.accessSync(file, fs.constants.R_OK)
  } catch (err) {
    throw new PlanError(input, `${what}${file} cannot be read (${(err as NodeJS.ErrnoException).code}); check its permissions`)
  }
  return st
}

/** The log folder can be made and written: a mistake there is the user's to fix (exit 2), found before any host is touched. */
function writableFolder(input: string, dir: string): string {
  const full = path.resolve(dir)
  // The folder itself, or the nearest existing folder above it that herd would create it in.
  let existing = full
  let st: fs.Stats | undefined
  for (;;) {
    try {
      st = fs.statSync(existing)
      break
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || path.dirname(existing) === existing) throw new PlanError(input, `${full} cannot be created (${code}); give a folder you can write to`)
      existing = path.dirname(existing)
    }
  }
  if (!st.isDirectory()) throw new PlanError(input, `${existing} is not a folder, so ${full} cannot be one; give a folder you can write to`)
  try {
    fs.accessSync(existing, fs.constants.W_OK | fs.constants.X_OK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new PlanError(input, `${existing === full ? full : `${full} cannot be created: ${existing}`} is not writable (${code}); give a folder you can write to`)
  }
  return full
}

function hostsFrom(opts: HerdOptions): HostSpec[] {
  const given = [opts.hostsFile !== undefined && 'a hosts file', opts.hostList !== undefined && '--hostlist', opts.hostsText !== undefined && 'hosts text'].filter((g): g is string => !!g)
  if (given.length > 1) throw new PlanError('hosts', `given twice (${given.join(' and ')}); give the hosts one way only: a hosts file, --hostlist, or standard input`)
  try {
    if (opts.hostsFile !== undefined) {
      readableFile('hosts file', opts.hostsFile, 'hosts file')
      const hosts = parseHostsText(fs.readFileSync(opts.hostsFile, 'utf8'))
      if (hosts.length === 0) throw new PlanError('hosts file', `${opts.hostsFile} names no host; write one host per line`)
      return hosts
    }
    const hosts = opts.hostList !== undefined ? parseHostList(opts.hostList) : parseHostsText(opts.hostsText ?? '')
    if (hosts.length === 0) throw new PlanError('hosts', 'no host given; pass a hosts file, --hostlist a,b,c, or hosts on standard input')
    return hosts
  } catch (err) {
    if (err instanceof HostParseError) throw new PlanError(opts.hostsFile ?? 'hosts', `${err.message}`)
    throw err
  }
}

function checkIdentity(file: string, passphrase: string | undefined): void {
  readableFile('--identity', file, 'identity')
  const parsed = sshUtils.parseKey(fs.readFileSync(file), passphrase)
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase|decrypt|bad decrypt/i.test(parsed.message)
    throw new PlanError(
      '--identity',
      encrypted
        ? passphrase
          ? `identity ${file}: the passphrase does not decrypt it; check HERD_SSH_PASSPHRASE`
          : `identity ${file} is encrypted; give its passphrase (HERD_SSH_PASSPHRASE) or load it into ssh-agent`
        : `identity ${file} is not a private key this client can read (${parsed.message}); use an OpenSSH or PEM private key`,
    )
  }
}

/** --mode, --owner, --group: octal bits, and user or group names (or numbers) as the hosts know them. */
function attributesFrom(opts: HerdOptions, tree: boolean): Plan['attributes'] {
  const given = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim())
  const [mode, owner, group] = [given(opts.mode), given(opts.owner), given(opts.group)]
  if (mode !== undefined) {
    if (!/^0?[0-7]{3,4}$/.test(mode)) throw new PlanError('--mode', `'${mode}' is not an octal mode; give one like 0644 or 0640`)
    if (tree) throw new PlanError('--mode', "sets a file's mode, and a folder's entries keep their own; leave --mode out (--owner and --group apply to every entry)")
  }
  const name = /^(?:\d+|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/
  if (owner !== undefined && !name.test(owner)) throw new PlanError('--owner', `'${owner}' is not a user name or uid; give one like www-data or 33`)
  if (group !== undefined && !name.test(group)) throw new PlanError('--group', `'${group}' is not a group name or gid; give one like www-data or 33`)
  if (mode === undefined && owner === undefined && group === undefined) return undefined
  return { mode: mode === undefined ? undefined : parseInt(mode, 8), owner, group }
}

/** A local folder to push: readable and searchable, holding only files, folders and links; its payload's size. */
function localFolder(folder: string): number {
  try {
    fs.accessSync(folder, fs.constants.R_OK | fs.constants.X_OK)
    return payloadSizeOf(walkTree(folder))
  } catch (err) {
    if (err instanceof TreeError) throw new PlanError('local file', err.message)
    const e = err as NodeJS.ErrnoException
    throw new PlanError('local file', `${e.path ?? folder} in the folder cannot be read (${e.code}); check its permissions`)
  }
}

const RATE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

/**
 * Bytes per second for a rate written as curl's --limit-rate takes it: a whole number of bytes, or with
 * K, M or G (either case, 1024-based as curl's: 5M is 5 MiB/s). 0 means no limit, as in curl.
 */
export function parseRate(value: string): number {
  const text = value.trim()
  const m = /^(\d+)([kKmMgG]?)$/.exec(text)
  const bytes = m ? Number(m[1]) * RATE_UNITS[m[2]!.toLowerCase()]! : NaN
  if (!Number.isSafeInteger(bytes)) throw new PlanError('--limit-rate', `'${text}' is not a rate; give bytes per second as a whole number with an optional K, M or G (1024-based, as curl), e.g. 50M or 500K`)
  return bytes
}

/**
 * The rate limit, if any, checked against the stall timeout: at the start each host waits its turn for
 * one block of the runner's limited upload among all hosts, and a host that waits longer than the stall
 * timeout would fail for nothing.
 */
function limitRateOf(opts: HerdOptions, size: number, hosts: number, stallSeconds: number): number | undefined {
  if (opts.limitRate === undefined || opts.limitRate.trim() === '') return undefined
  const rate = parseRate(opts.limitRate)
  if (rate === 0) return undefined
  const block = Math.min(BLOCK, pieceLengthFor(size, hosts))
  const wait = (2 * (hosts + 1) * block) / rate
  if (wait > stallSeconds) {
    throw new PlanError('--limit-rate', `at ${opts.limitRate.trim()} a host may wait ${Math.ceil(wait)} s for data while ${hosts === 1 ? '1 host shares' : `${hosts} hosts share`} the runner, longer than --stall-timeout ${stallSeconds}; raise --stall-timeout to ${Math.ceil(wait)} or the rate`)
  }
  return rate
}

/** Validates everything that can be checked on the runner before any host is touched. */
export function makePlan(opts: HerdOptions): Plan {
  if (!opts.file) throw new PlanError('local file', 'missing; give the file or folder to push')
  const tree = fs.statSync(opts.file, { throwIfNoEntry: false })?.isDirectory() === true
  const st = tree ? fs.statSync(opts.file) : readableFile('local file', opts.file, 'local file')
  if (!tree && st.size === 0) throw new PlanError('local file', `${opts.file} is empty; give a file with content`)
  const size = tree ? localFolder(opts.file) : st.size
  if (!opts.destination) throw new PlanError('remote file', 'missing; give the absolute path on the hosts')
  // A folder goes to a folder: `/srv/app/` and `/srv/app` name the same one.
  const destination = tree && opts.destination.length > 1 ? opts.destination.replace(/\/+$/, '') : opts.destination
  if (!destination.startsWith('/')) throw new PlanError('remote file', `'${destination}' is not an absolute path; write it from / (e.g. /srv/${path.basename(path.resolve(opts.file))})`)
  if (destination === '/' || destination.endsWith('/') || /\/\.{1,2}$/.test(destination)) {
    throw new PlanError('remote file', tree ? `'${destination}' is not a folder herd can replace; give the folder's own path, e.g. /srv/${path.basename(path.resolve(opts.file))}` : `'${destination}' names a folder; give the full path of the file, e.g. ${destination.replace(/\/+$/, '')}/${path.basename(opts.file)}`)
  }
  const releases = opts.releases === undefined || opts.releases === '' ? undefined : wholeNumber('--releases', opts.releases, 1, 1, 1000)
  if (releases !== undefined && !tree) throw new PlanError('--releases', `keeps releases of a folder, and ${opts.file} is a file; push a folder or leave --releases out`)
  const attributes = attributesFrom(opts, tree)
  if (destination.includes('\0')) throw new PlanError('remote file', 'contains a NUL byte; remove it')
  const hostKeyPolicy = (opts.hostKeyPolicy ?? 'strict') as Plan['hostKeyPolicy']
  if (hostKeyPolicy !== 'strict' && hostKeyPolicy !== 'accept-new') {
    throw new PlanError('host key policy', `'${opts.hostKeyPolicy}' is not known; use strict or accept-new`)
  }
  const identityFiles = opts.identityFiles ?? []
  for (const id of identityFiles) checkIdentity(id, opts.passphrase)
  const knownHostsFiles = opts.knownHostsFiles ?? []
  for (const kh of knownHostsFiles) readableFile('--known-hosts', kh, 'known_hosts file')
  if (opts.sshConfig !== undefined) readableFile('--ssh-config', opts.sshConfig, 'ssh config')
  const remotePath = (opts.remotePath ?? DEFAULTS.remotePath).replace(/^~\//, '')
  if (remotePath === '' || remotePath.includes('\0') || remotePath.includes('\n')) throw new PlanError('--remote-path', 'is empty or contains a NUL or newline; give a folder path without them')
  const node = opts.node ?? DEFAULTS.node
  // No `=`: the agent starts as `env NAME=VALUE... NODE`, where a word with `=` would be one more setting.
  if (node === '' || /[\0\n=]/.test(node)) throw new PlanError('--node', "is empty or contains a NUL, a newline or '='; give a command or path without them")
  const runnerVia = (opts.runnerVia === undefined || opts.runnerVia === '' ? DEFAULTS.runnerVia : opts.runnerVia.trim()) as RunnerVia
  if (!['auto', 'direct', 'ssh'].includes(runnerVia)) throw new PlanError('--runner-via', `'${runnerVia}' is not known; use auto, direct or ssh`)
  const sshClient = (opts.sshClient === undefined || opts.sshClient === '' ? DEFAULTS.sshClient : opts.sshClient.trim()) as Plan['sshClient']
  if (!['auto', 'builtin', 'openssh'].includes(sshClient)) throw new PlanError('--ssh', `'${sshClient}' is not known; use auto, builtin or openssh`)
  const postCommand = opts.postCommand === undefined || opts.postCommand.trim() === '' ? undefined : opts.postCommand
  if (postCommand?.includes('\0')) throw new PlanError('--post-command', 'contains a NUL byte; give a shell command without it')
  const postBatch = opts.postBatch === undefined || opts.postBatch === '' ? undefined : wholeNumber('--post-batch', opts.postBatch, 1, 1)
  if (postBatch !== undefined && postCommand === undefined) throw new PlanError('--post-batch', 'needs --post-command; give the command to run in batches')
  const timeout = opts.timeout === undefined || opts.timeout === '' ? undefined : wholeNumber('--timeout', opts.timeout, 0, 1)
  const hosts = hostsFrom(opts)
  const stallSeconds = wholeNumber('--stall-timeout', opts.stallTimeout, DEFAULTS.stallTimeout, 5)
  const plan: Plan = {
    file: path.resolve(opts.file),
    size,
    mode: st.mode & 0o7777,
    tree,
    releases,
    attributes,
    destination,
    hosts,
    retry: wholeNumber('--retry', opts.retry, DEFAULTS.retry, -1),
    ports: parsePorts(opts.port),
    remotePath,
    logDir: opts.logDir ? writableFolder('--log-dir', opts.logDir) : undefined,
    timeoutSeconds: timeout,
    concurrency: wholeNumber('--concurrency', opts.concurrency, DEFAULTS.concurrency, 1, 1000),
    identityFiles,
    knownHostsFiles,
    hostKeyPolicy,
    encrypt: opts.encrypt ?? true,
    user: opts.user,
    passphrase: opts.passphrase,
    node,
    sshConfig: opts.sshConfig,
    runnerVia,
    stallSeconds,
    sshClient,
    postCommand,
    postBatch,
    limitRate: limitRateOf(opts, size, hosts.length, stallSeconds),
    frontEnd: opts.frontEnd ?? 'cli',
  }
  checkSomeKey(plan)
  return plan
}

/** Without any key every host would fail authentication alike: the setup is the user's to fix (exit 2), checked after the inputs themselves. */
function checkSomeKey(plan: Plan): void {
  if (plan.identityFiles.length > 0 || plan.hosts.some((h) => canOfferKey(h, { configPath: plan.sshConfig, defaultUser: plan.user }))) return
  const words = fixWords(plan.frontEnd)
  throw new PlanError(words.keyInput, `no SSH key to offer: ${words.noKey}; ${words.giveKey}`)
}
