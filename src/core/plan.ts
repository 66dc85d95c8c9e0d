// Turns front-end options into a validated Plan: every input check lives here, one message per mistake.
import fs from 'node:fs'
import path from 'node:path'
import ssh2 from 'ssh2'
import { HostParseError, parseHostList, parseHostsText, portNumber, type HostSpec } from './hosts.js'
import { optionName, optionNamed, type FrontEnd } from './option-names.js'

// ssh2 is CommonJS: take utils from its default export so unbundled ESM imports work too.
const sshUtils = ssh2.utils

/** Options as a front end gathers them (strings where the user typed strings). */
export interface HerdOptions {
  /** Local file to push. */
  file: string
  /** Absolute path of the file on every host. */
  destination: string
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
  /** The front end gathering these options: messages name its flags or inputs (default cli). */
  frontEnd?: FrontEnd
}

/** A validated run: types are exact, files exist, hosts parsed. */
export interface Plan {
  file: string
  size: number
  mode: number
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
  /** The front end in use: every message names its flags or inputs. */
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
  port: '8998',
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

export function parsePorts(value: number | string | undefined, frontEnd?: FrontEnd): [number, number] {
  const text = String(value ?? DEFAULTS.port).trim()
  const [lowText = '', highText = lowText, ...more] = text.split('-')
  const low = portNumber(lowText)
  const high = portNumber(highText)
  if (low === undefined || high === undefined || more.length > 0 || low > high) throw new PlanError(optionNamed('port', frontEnd), `'${text}' is not a port (1-65535) or a range LOW-HIGH; give one, e.g. 8998 or 8998-9098`)
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

function hostsFrom(opts: HerdOptions, fe: FrontEnd): HostSpec[] {
  const hostsName = optionNamed('hosts', fe)
  const given = [opts.hostsFile !== undefined && 'a hosts file', opts.hostList !== undefined && optionNamed('hostList', fe), opts.hostsText !== undefined && 'hosts text'].filter((g): g is string => !!g)
  if (given.length > 1) throw new PlanError(hostsName, `given twice (${given.join(' and ')}); give the hosts one way only: a hosts file, ${optionNamed('hostList', fe)}, or standard input`)
  try {
    if (opts.hostsFile !== undefined) {
      readableFile(optionNamed('hostsFile', fe), opts.hostsFile, optionNamed('hostsFile', fe))
      const hosts = parseHostsText(fs.readFileSync(opts.hostsFile, 'utf8'))
      if (hosts.length === 0) throw new PlanError(optionNamed('hostsFile', fe), `${opts.hostsFile} names no host; write one host per line`)
      return hosts
    }
    const hosts = opts.hostList !== undefined ? parseHostList(opts.hostList) : parseHostsText(opts.hostsText ?? '')
    if (hosts.length === 0) {
      throw new PlanError(hostsName, fe === 'cli' ? 'no host given; pass a hosts file, --hostlist a,b,c, or hosts on standard input' : 'no host given; list the hosts one per line, or give the path of a hosts file')
    }
    return hosts
  } catch (err) {
    // A line of a hosts file is named by the file (and by the input that named the file).
    if (err instanceof HostParseError) throw new PlanError(opts.hostsFile === undefined ? hostsName : fe === 'cli' ? opts.hostsFile : `${hostsName}: ${opts.hostsFile}`, `${err.message}`)
    throw err
  }
}

function checkIdentity(file: string, passphrase: string | undefined, fe: FrontEnd): void {
  readableFile(optionNamed('identity', fe), file, 'identity')
  const parsed = sshUtils.parseKey(fs.readFileSync(file), passphrase)
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase|decrypt|bad decrypt/i.test(parsed.message)
    throw new PlanError(
      optionNamed('identity', fe),
      encrypted
        ? passphrase
          ? `identity ${file}: the passphrase does not decrypt it; check ${optionNamed('passphrase', fe)}`
          : `identity ${file} is encrypted; give its passphrase (${optionNamed('passphrase', fe)}) or load it into ssh-agent`
        : `identity ${file} is not a private key this client can read (${parsed.message}); use an OpenSSH or PEM private key`,
    )
  }
}

/** Validates everything that can be checked on the runner before any host is touched. */
export function makePlan(opts: HerdOptions): Plan {
  const fe = opts.frontEnd ?? 'cli'
  const named = (key: Parameters<typeof optionNamed>[0]) => optionNamed(key, fe)
  if (!opts.file) throw new PlanError(named('file'), 'missing; give the file to push')
  const st = readableFile(named('file'), opts.file, named('file'))
  if (st.size === 0) throw new PlanError(named('file'), `${opts.file} is empty; give a file with content`)
  if (!opts.destination) throw new PlanError(named('destination'), 'missing; give the absolute path on the hosts')
  const destination = opts.destination
  if (!destination.startsWith('/')) throw new PlanError(named('destination'), `'${destination}' is not an absolute path; write it from / (e.g. /srv/${path.basename(opts.file)})`)
  if (destination.endsWith('/') || /\/\.{1,2}$/.test(destination)) throw new PlanError(named('destination'), `'${destination}' names a folder; give the full path of the file, e.g. ${destination.replace(/\/+$/, '')}/${path.basename(opts.file)}`)
  if (destination.includes('\0')) throw new PlanError(named('destination'), 'contains a NUL byte; remove it')
  const hostKeyPolicy = (opts.hostKeyPolicy ?? 'strict') as Plan['hostKeyPolicy']
  if (hostKeyPolicy !== 'strict' && hostKeyPolicy !== 'accept-new') {
    throw new PlanError(named('hostKeyPolicy'), `'${opts.hostKeyPolicy}' is not known; use strict or accept-new`)
  }
  const identityFiles = opts.identityFiles ?? []
  for (const id of identityFiles) checkIdentity(id, opts.passphrase, fe)
  const knownHostsFiles = opts.knownHostsFiles ?? []
  for (const kh of knownHostsFiles) readableFile(named('knownHosts'), kh, 'known_hosts file')
  if (opts.sshConfig !== undefined) readableFile(optionName('sshConfig', fe) ?? 'ssh config', opts.sshConfig, 'ssh config')
  const remotePath = (opts.remotePath ?? DEFAULTS.remotePath).replace(/^~\//, '')
  if (remotePath === '' || remotePath.includes('\0') || remotePath.includes('\n')) throw new PlanError(named('remotePath'), 'is empty or contains a NUL or newline; give a folder path without them')
  const node = opts.node ?? DEFAULTS.node
  if (node === '' || node.includes('\0') || node.includes('\n')) throw new PlanError(optionName('node', fe) ?? 'node', 'is empty or contains a NUL or newline; give a command or path without them')
  const runnerVia = (opts.runnerVia === undefined || opts.runnerVia === '' ? DEFAULTS.runnerVia : opts.runnerVia.trim()) as RunnerVia
  if (!['auto', 'direct', 'ssh'].includes(runnerVia)) throw new PlanError(named('runnerVia'), `'${runnerVia}' is not known; use auto, direct or ssh`)
  const sshClient = (opts.sshClient === undefined || opts.sshClient === '' ? DEFAULTS.sshClient : opts.sshClient.trim()) as Plan['sshClient']
  if (!['auto', 'builtin', 'openssh'].includes(sshClient)) throw new PlanError(named('sshClient'), `'${sshClient}' is not known; use auto, builtin or openssh`)
  const postCommand = opts.postCommand === undefined || opts.postCommand.trim() === '' ? undefined : opts.postCommand
  if (postCommand?.includes('\0')) throw new PlanError(named('postCommand'), 'contains a NUL byte; give a shell command without it')
  const postBatch = opts.postBatch === undefined || opts.postBatch === '' ? undefined : wholeNumber(named('postBatch'), opts.postBatch, 1, 1)
  if (postBatch !== undefined && postCommand === undefined) throw new PlanError(named('postBatch'), `needs ${named('postCommand')}; give the command to run in batches`)
  const timeout = opts.timeout === undefined || opts.timeout === '' ? undefined : wholeNumber(named('timeout'), opts.timeout, 0, 1)
  return {
    file: path.resolve(opts.file),
    size: st.size,
    mode: st.mode & 0o7777,
    destination,
    hosts: hostsFrom(opts, fe),
    retry: wholeNumber(named('retry'), opts.retry, DEFAULTS.retry, -1),
    ports: parsePorts(opts.port, fe),
    remotePath,
    logDir: opts.logDir ? path.resolve(opts.logDir) : undefined,
    timeoutSeconds: timeout,
    concurrency: wholeNumber(named('concurrency'), opts.concurrency, DEFAULTS.concurrency, 1, 1000),
    identityFiles,
    knownHostsFiles,
    hostKeyPolicy,
    encrypt: opts.encrypt ?? true,
    user: opts.user,
    passphrase: opts.passphrase,
    node,
    sshConfig: opts.sshConfig,
    runnerVia,
    stallSeconds: wholeNumber(named('stallTimeout'), opts.stallTimeout, DEFAULTS.stallTimeout, 5),
    sshClient,
    postCommand,
    postBatch,
    frontEnd: fe,
  }
}
