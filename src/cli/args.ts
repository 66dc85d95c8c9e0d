// herd's command line, compatible with herd.py's (local-file remote-file hosts --retry --port --remote-path --log-dir).
import { Command, Option, CommanderError } from 'commander'
import type { HerdOptions } from '../core/plan.js'
import { DEFAULTS } from '../core/plan.js'
import { commandFrontEnd } from '../core/front-end.js'

/** Parsed command line: the core's options plus how to show the run. */
export interface CliSettings {
  options: HerdOptions
  json: boolean
  quiet: boolean
  /** herd.py's --data-file was given (no use now). */
  dataFileIgnored: boolean
  /** Hosts are to be read from standard input. */
  hostsFromStdin: boolean
}

export const EXIT_CODES_HELP = `
Exit codes:
  0    every host has the file
  1    some host failed (the others still got it); each failure is listed with its cause
  2    bad usage or input, before any host was touched
  130  interrupted by SIGINT, 143 by SIGTERM (agents stopped, temporary files removed)

Hosts: one per line in HOSTS_FILE (herd.py's hosts.dat; blank lines and # comments ignored), as
host, user@host, host:port, user@host:port or [v6addr]:port; or --hostlist a,b,c; or standard input.
SSH works as with OpenSSH: ~/.ssh/config (Host aliases, HostName, User, Port, IdentityFile,
UserKnownHostsFile, ProxyJump), the ssh-agent, default identities, known_hosts (hashed too).
Host keys are checked strictly; --accept-new-host-keys adds unknown ones (never changed ones).
An encrypted identity's passphrase is read from HERD_SSH_PASSPHRASE, never from the command line.

Example:
  herd build.tar.gz /srv/app/build.tar.gz hosts.txt --retry 2 --log-dir herd-logs
`

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

export function buildCommand(version: string): Command {
  return new Command('herd')
    .description('Push one file to many hosts over SSH and a private BitTorrent swarm: every host fetches from the runner and from each other.')
    .usage('[options] LOCAL_FILE REMOTE_FILE [HOSTS_FILE]')
    .argument('<local-file>', 'file or folder to push')
    .argument('<remote-file>', 'absolute path of the file (or folder) on every host')
    .argument('[hosts-file]', 'hosts, one per line (else --hostlist or standard input)')
    .option('--hostlist <hosts>', 'hosts separated by commas')
    .option('--retry <n>', 'extra attempts per host after a failure; -1 retries until success or --timeout', String(DEFAULTS.retry))
    .option('--port <port>', 'tracker port, or a range LOW-HIGH: the first free one (the default range lets several runs share a machine)', DEFAULTS.port)
    .option('--remote-path <dir>', "working folder on each host for herd's agent (relative to the login's home)", DEFAULTS.remotePath)
    .option('--log-dir <dir>', 'write one log file per host with the whole story of every attempt')
    .option('--data-file <file>', 'accepted for herd.py compatibility; has no use now')
    .option('--timeout <seconds>', 'overall time limit; hosts still running then are reported as timed out')
    .option('--concurrency <n>', 'SSH connections being opened at once', String(DEFAULTS.concurrency))
    .option('-i, --identity <file>', 'identity (private key) file, tried first; repeatable', collect, [])
    .option('--known-hosts <file>', 'known_hosts file to use instead of the ssh config one; repeatable', collect, [])
    .option('--accept-new-host-keys', 'add unknown host keys to known_hosts (changed keys still fail)')
    .option('--no-encryption', 'send the file between peers in the clear: only on a network you trust (saves about a fifth of the time where CPU sets the pace)')
    .option('--runner-via <way>', "how hosts reach the runner's tracker and seeder: auto (directly, else through their SSH connection), direct, ssh", DEFAULTS.runnerVia)
    .option('--stall-timeout <seconds>', 'fail a host that gets no verified byte for this long (it is retried under --retry)', String(DEFAULTS.stallTimeout))
    .option('--ssh <client>', "SSH client: auto (the built-in one, or the system's OpenSSH for hosts whose config needs it: CertificateFile, Match exec, a host certificate...), builtin, openssh", DEFAULTS.sshClient)
    .option('--post-command <cmd>', 'shell command to run on each host once its copy is in place ($HERD_DEST is the destination); a non-zero exit fails that host')
    .option('--mode <octal>', "the file's mode on every host, e.g. 0640 (default: a replaced file's own, else the local mode without group/other write)")
    .option('--owner <user>', 'owner of the file, or of every entry of a folder, by name or uid (default: a replaced file\'s own, else the login)')
    .option('--group <group>', 'group of the file, or of every entry of a folder, by name or gid')
    .option('--releases <k>', 'with a folder: keep K releases in REMOTE/releases, REMOTE/current linking to the newest (switched by one rename)')
    .option('--post-batch <n>', 'run --post-command on at most N hosts at a time, after the file is on every host (rolling restarts)')
    .option('--limit-rate <rate>', "cap each host's upload and download, and the runner's upload, in bytes per second; K, M, G as curl's (1024-based): 50M, 500K")
    .option('--user <name>', 'remote user for hosts written without user@ (beats User in ~/.ssh/config, as ssh -l does)')
    .option('--node <path>', 'node on the hosts (Node.js 20 or newer)', DEFAULTS.node)
    .option('--ssh-config <file>', 'OpenSSH client config to read (default ~/.ssh/config)')
    .option('--json', 'print the report as JSON on stdout (messages go to stderr)')
    .addOption(new Option('-q, --quiet', 'print only failures and the totals'))
    .version(version, '--version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', EXIT_CODES_HELP)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
}

/** Parses argv (without node and script); throws CommanderError for usage mistakes and help/version. */
export function parseCli(argv: string[], version: string, stdinIsTTY: boolean): CliSettings {
  const cmd = buildCommand(version)
  cmd.parse(argv, { from: 'user' })
  const [file, destination, hostsFile] = cmd.args as [string, string, string | undefined]
  const o = cmd.opts<Record<string, unknown>>()
  const hostList = o.hostlist as string | undefined
  const hostsFromStdin = hostsFile === undefined && hostList === undefined && !stdinIsTTY
  return {
    options: {
      file,
      destination,
      hostsFile,
      hostList,
      retry: o.retry as string,
      port: o.port as string,
      remotePath: o.remotePath as string,
      logDir: o.logDir as string | undefined,
      timeout: o.timeout as string | undefined,
      concurrency: o.concurrency as string,
      identityFiles: o.identity as string[],
      knownHostsFiles: o.knownHosts as string[],
      hostKeyPolicy: o.acceptNewHostKeys ? 'accept-new' : 'strict',
      encrypt: o.encryption !== false,
      user: o.user as string | undefined,
      node: o.node as string,
      sshConfig: o.sshConfig as string | undefined,
      runnerVia: o.runnerVia as string,
      stallTimeout: o.stallTimeout as string,
      sshClient: o.ssh as string,
      postCommand: o.postCommand as string | undefined,
      postBatch: o.postBatch as string | undefined,
      releases: o.releases as string | undefined,
      mode: o.mode as string | undefined,
      owner: o.owner as string | undefined,
      group: o.group as string | undefined,
      limitRate: o.limitRate as string | undefined,
      passphrase: process.env.HERD_SSH_PASSPHRASE || undefined,
      frontEnd: commandFrontEnd(),
    },
    json: !!o.json,
    quiet: !!o.quiet,
    dataFileIgnored: o.dataFile !== undefined,
    hostsFromStdin,
  }
}

export { CommanderError }
