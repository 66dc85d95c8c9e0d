// One SSH connection per host with OpenSSH semantics: config, ProxyJump, known_hosts, agent and keys.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Duplex, type Readable } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client as SshClient, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { makeAuth } from './auth.js';
import { resolveHost, ResolveError, type ResolvedHost } from './config.js';
import { fail, SshError, tildePath, type SshErrorKind } from './errors.js';
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  formatKnownHostsLine,
  hasCertAuthority,
  knownKeyTypes,
  keyTypeOf,
} from './known-hosts.js';
import { shellQuote } from './quote.js';
import { leaseJump, type JumpLease } from './jumps.js';
import { openTunnel, type Tunnel } from './forward.js';
import { connectOpenSsh, scrubbedEnv } from './openssh.js';
import { fixWords, type FrontEnd } from '../front-end.js';

const { Client } = ssh2;

export { SshError, type SshErrorKind };

export interface SshSettings {
  /** ssh config file; default ~/.ssh/config (missing = empty). */
  configPath?: string;
  /** -i/--identity files, tried first (after the agent); a missing one is an 'identity' error. */
  identityFiles: string[];
  /** --known-hosts files; when non-empty they replace UserKnownHostsFile (global files still count). */
  knownHostsFiles: string[];
  /** strict (default) refuses unknown keys; accept-new records unknown keys. A changed key always fails. */
  hostKeyPolicy: 'strict' | 'accept-new';
  /** --user: beats config User, loses to user@ in the host entry. */
  defaultUser?: string;
  /** Passphrase for encrypted identity files (never logged). */
  passphrase?: string;
  /** TCP connect + SSH handshake + auth budget per hop; a host's ConnectTimeout in ssh config wins. */
  connectTimeoutMs: number;
  /** SSH keepalive interval once connected (3 missed = dead link); 0 = use ServerAliveInterval from config. */
  keepaliveIntervalMs: number;
  /** Agent socket; undefined = like ssh (IdentityAgent, else SSH_AUTH_SOCK); '' = no agent. */
  agentSocket?: string;
  /**
   * Which client: builtin (ssh2), openssh (the system's ssh), or auto (default): the built-in one unless
   * the host's config asks for what only OpenSSH does (a CertificateFile, Match exec, a host
   * certificate in known_hosts...) and OpenSSH is installed.
   */
  client?: 'auto' | 'builtin' | 'openssh';
  /** Whose flags and inputs the fixes in messages name (default the herd command's). */
  frontEnd?: FrontEnd;
}

export interface SshTarget {
  host: string;
  user?: string;
  port?: number;
  /** As the user wrote it, for messages. */
  label: string;
}

/**
 * A remote command's standard streams: stdin/stdout as the stream, `stderr` beside it. 'close' carries
 * (code, signal) as a child process's does: read the exit there, since a quick command's 'exit' can be
 * emitted before anyone awaiting the channel could listen.
 */
export type RemoteChannel = Duplex & { stderr: Readable; close(): void };

export interface SshConnection {
  label: string;
  resolved: ResolvedHost;
  /** Which client carries it: the built-in one (ssh2) or the system's OpenSSH. */
  transport: 'builtin' | 'openssh';
  /** The runner's address as the host sees it (or as the first jump host does); '' when unknown (ProxyCommand). */
  localAddress: string;
  /** True when the connection goes through ProxyJump or ProxyCommand. */
  viaJump: boolean;
  /** Run a command (build it with shellCommand); no pty. */
  exec(command: string): Promise<RemoteChannel>;
  /** Ports on the host's loopback leading to these ports on the runner's; ForwardRefused when sshd says no. */
  forwardToRunner(to: { seederPort: number; trackerPort: number }): Promise<Tunnel>;
  /** Ends the connection (and the jump hosts behind it); onClose then fires without an error. */
  close(): void;
  /** Fires once when the connection ends: no error after close(), an SshError for anything else. */
  onClose(cb: (err?: Error) => void): void;
}

export type SshLog = (line: string) => void;

/** The built-in client's connection: its ssh2 client carries the channels of the hosts behind a jump. */
interface BuiltinConnection extends SshConnection {
  client: SshClient;
}

/** Connect to `target` like `ssh -o BatchMode=yes target` would; rejects with SshError. */
export async function connectHost(target: SshTarget, settings: SshSettings, log: SshLog): Promise<SshConnection> {
  let resolved: ResolvedHost;
  try {
    resolved = resolveHost(
      { host: target.host, ...(target.user !== undefined ? { user: target.user } : {}), ...(target.port !== undefined ? { port: target.port } : {}) },
      {
        configPath: settings.configPath,
        defaultUser: settings.defaultUser,
        identityFiles: settings.identityFiles,
        knownHostsFiles: settings.knownHostsFiles,
        agentSocket: settings.agentSocket,
      },
    );
  } catch (err) {
    if (err instanceof ResolveError) throw fail('resolve', `${target.label}: ${err.message}`, 'fix the host entry or ~/.ssh/config');
    throw err;
  }
  checkExplicitIdentities(target.label, resolved);
  const client = settings.client ?? 'auto';
  const why = client === 'auto' ? openSshReason(resolved) : undefined;
  if (client === 'openssh' || (why && hasOpenSsh())) {
    log(`using OpenSSH's ssh for this host${why ? ` (${why})` : ' (--ssh openssh)'}`);
    return connectOpenSsh(target, resolved, settings, effectivePolicy(settings, resolved).policy, log);
  }
  if (why) log(`${why}, but OpenSSH's ssh is not installed: the built-in client tries without it`);
  if (resolved.ignored.length > 0) log(`the built-in client does not use these ssh config settings: ${resolved.ignored.join(', ')} (--ssh openssh would)`);
  return openHop(target.label, resolved, settings, log, false);
}

/** Why the built-in client can't do what this host's config and known_hosts ask, or undefined. */
function openSshReason(r: ResolvedHost): string | undefined {
  if (r.openSshOnly.length > 0) return `the ssh config has ${r.openSshOnly.join(', ')}, which only OpenSSH does`;
  const names = [r.hostKeyAlias ?? r.hostname.toLowerCase()];
  const files = [...r.userKnownHostsFiles, ...r.globalKnownHostsFiles];
  if (hasCertAuthority(files, names, r.port) && knownKeyTypes(files, names, r.port).length === 0) {
    return 'known_hosts vouches for it with @cert-authority only (a host certificate)';
  }
  return undefined;
}

let openSshInstalled: boolean | undefined;
function hasOpenSsh(): boolean {
  openSshInstalled ??= spawnSync('ssh', ['-V'], { stdio: 'ignore', timeout: 5000 }).status === 0;
  return openSshInstalled;
}

// ---------------------------------------------------------------------------------------------

/** -i files are the user's explicit choice: a missing or unreadable one stops before any network. */
function checkExplicitIdentities(label: string, r: ResolvedHost): void {
  for (let hop: ResolvedHost | undefined = r; hop; hop = hop.jump) {
    for (const f of hop.identityFiles) {
      if (!f.explicit) continue;
      try {
        readFileSync(f.path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw fail('identity', `${label}: identity file ${tildePath(f.path)} cannot be read (${code})`, 'check the identity file path and its permissions');
      }
    }
  }
}

type HostKeyPolicy = SshSettings['hostKeyPolicy'];

/**
 * What the user told herd beats the ssh config: with known_hosts files or accept-new given to herd,
 * StrictHostKeyChecking is not read. Otherwise the config's `no` or `accept-new` lets herd record an
 * unknown key (as `ssh` would); a changed key fails whatever the config says.
 */
function effectivePolicy(settings: SshSettings, r: ResolvedHost): { policy: HostKeyPolicy; fromConfig: boolean } {
  if (settings.knownHostsFiles.length > 0 || settings.hostKeyPolicy !== 'strict') return { policy: settings.hostKeyPolicy, fromConfig: false };
  const relaxed = r.strictHostKeyChecking === 'no' || r.strictHostKeyChecking === 'accept-new';
  return relaxed ? { policy: 'accept-new', fromConfig: true } : { policy: 'strict', fromConfig: false };
}

const ALGOS_FOR_KEY_TYPE: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

async function openHop(
  label: string,
  r: ResolvedHost,
  settings: SshSettings,
  baseLog: SshLog,
  isJump: boolean,
): Promise<BuiltinConnection> {
  const who = isJump ? `${label}: jump host ${r.alias}` : label;
  const log: SshLog = isJump ? (line) => baseLog(`[jump ${r.alias}] ${line}`) : baseLog;
  const addr = `${r.hostname}:${r.port}`;
  const timeoutMs = r.connectTimeoutMs ?? settings.connectTimeoutMs;
  const started = Date.now();
  log(
    `resolved ${r.alias} -> ${r.user}@${addr}` +
      (r.configFile ? ` (ssh config ${tildePath(r.configFile)})` : ' (no ssh config)') +
      (r.jump ? ` via ${r.jump.alias}` : '') +
      (r.proxyCommand ? ' via ProxyCommand' : ''),
  );

  // Transport: a TCP socket we own (so localAddress is known), a channel through the jump host, or a ProxyCommand.
  let jump: JumpLease<BuiltinConnection> | undefined;
  let sock: Duplex;
  let localAddress: string;
  if (r.jump) {
    const via = r.jump;
    jump = await leaseJump(via, label, () => openHop(label, via, settings, baseLog, true));
    const jumpConn = jump.conn;
    if (jump.shared) log(`sharing the connection to jump host ${via.alias} with other hosts`);
    try {
      sock = await forwardOut(jumpConn.client, r.hostname, r.port, timeoutMs);
    } catch (err) {
      jump.release();
      const reason = (err as Error).message.replace(/^\(SSH\) /, '');
      throw fail('jump', `${who}: jump host ${r.jump.alias} cannot open a connection to ${addr} (${reason})`,
        'check the address and port as seen from the jump host, and that it allows TCP forwarding');
    }
    localAddress = jumpConn.localAddress;
    log(`tunnel to ${addr} opened through ${r.jump.alias}`);
  } else if (r.proxyCommand) {
    log(`starting ProxyCommand: ${r.proxyCommand}`);
    sock = proxyCommandStream(r.proxyCommand, log);
    localAddress = '';
  } else {
    const tcp = await tcpConnect(who, r.hostname, r.port, timeoutMs);
    localAddress = unmapV4(tcp.localAddress ?? '');
    log(`tcp connected to ${unmapV4(tcp.remoteAddress ?? r.hostname)}:${r.port} from ${localAddress}:${tcp.localPort}`);
    sock = tcp;
  }

  const { policy, fromConfig } = effectivePolicy(settings, r);
  if (fromConfig) log(`host key policy ${policy} (StrictHostKeyChecking ${r.strictHostKeyChecking} in ssh config; a changed key still fails)`);
  const keyName = r.hostKeyAlias ?? r.hostname.toLowerCase();
  const knownFiles = [...r.userKnownHostsFiles, ...r.globalKnownHostsFiles];
  const preferredTypes = knownKeyTypes(knownFiles, [keyName], r.port).filter((t) => ALGOS_FOR_KEY_TYPE[t]);
  // Prefer the key types known_hosts has for this host, as OpenSSH does, so a host known by its RSA key
  // is not reported unknown just because it also has an ed25519 key.
  const preferredAlgos = preferredTypes.flatMap((t) => ALGOS_FOR_KEY_TYPE[t]!);

  let hostKeyError: SshError | undefined;
  const hostVerifier = (key: Buffer): boolean => {
    try {
      const fp = fingerprint(key);
      const type = keyTypeOf(key);
      const res = checkHostKey(knownFiles, [keyName], r.port, key);
      const lookup = res.lookupName;
      switch (res.status) {
        case 'match':
          log(`host key ${type} ${fp} matches ${tildePath(res.file!)}:${res.line}`);
          return true;
        case 'revoked':
          hostKeyError = fail('host-key-revoked', `${who}: host key ${type} ${fp} for ${lookup} is marked @revoked in ${tildePath(res.file!)}:${res.line}`,
            'the host must get a new host key; do not connect until it has');
          return false;
        case 'changed': {
          const other = res.knownKeyType !== type ? ` (on record: ${res.knownKeyType})` : '';
          hostKeyError = fail('host-key-changed',
            `${who}: HOST KEY CHANGED for ${lookup}: the server offers ${type} ${fp}, which does not match ${tildePath(res.file!)}:${res.line}${other}`,
            `if the change is expected, remove the old key with: ssh-keygen -R ${shellQuote(lookup)} -f ${shellQuote(res.file!)}`);
          return false;
        }
        case 'unknown': {
          if (policy === 'accept-new') {
            const file = r.userKnownHostsFiles[0];
            if (file) {
              try {
                appendKnownHost(file, formatKnownHostsLine(keyName, r.port, key, { hash: r.hashKnownHosts }));
                log(`host key ${type} ${fp} for ${lookup} was new; added to ${tildePath(file)} (accept-new)`);
              } catch (err) {
                log(`host key ${type} ${fp} for ${lookup} was new; accepted, but could not add it to ${tildePath(file)}: ${(err as Error).message}`);
              }
            } else {
              log(`host key ${type} ${fp} for ${lookup} was new; accepted (no known_hosts file to record it in)`);
            }
            return true;
          }
          const kh = r.userKnownHostsFiles[0] ? tildePath(r.userKnownHostsFiles[0]) : '~/.ssh/known_hosts';
          const portArg = r.port !== 22 ? `-p ${r.port} ` : '';
          const alias = r.hostKeyAlias ? ` (then replace the host name by ${r.hostKeyAlias}, the HostKeyAlias)` : '';
          const words = fixWords(settings.frontEnd);
          hostKeyError = fail('host-key-unknown',
            `${who}: host key for ${lookup} is not known (${type} ${fp})`,
            `check that fingerprint with the host's owner, then ${words.addHostKey(`ssh-keyscan ${portArg}${shellQuote(r.hostname)}`, kh)}${alias}; or trust it on first use with ${words.acceptNew}`);
          return false;
        }
      }
    } catch (err) {
      hostKeyError = fail('host-key-unknown', `${who}: cannot check the host key: ${(err as Error).message}`, 'check the known_hosts files');
      return false;
    }
  };

  const auth = makeAuth(who, r, settings.passphrase, log, fixWords(settings.frontEnd));
  const client = new Client();
  // ssh2 may emit more errors after the one we act on (e.g. "Connection lost" after a timeout).
  client.on('error', () => {});
  // The config's ServerAliveInterval is the user's choice; herd's own interval only where it has none.
  const keepalive = r.serverAliveIntervalMs !== undefined
    ? { interval: r.serverAliveIntervalMs, count: r.serverAliveCountMax ?? 3 }
    : { interval: settings.keepaliveIntervalMs, count: 3 };
  const config: ConnectConfig = {
    sock,
    username: r.user,
    readyTimeout: Math.max(1000, timeoutMs - (Date.now() - started)),
    keepaliveInterval: keepalive.interval,
    keepaliveCountMax: keepalive.count,
    hostVerifier,
    authHandler: auth.handler,
    ...(preferredAlgos.length > 0 ? { algorithms: { serverHostKey: { remove: preferredAlgos, prepend: preferredAlgos, append: [] } } } : {}),
  };

  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: SshError): void => {
        if (settled) return;
        settled = true;
        client.removeListener('error', onError);
        client.removeListener('ready', onReady);
        client.removeListener('close', onEarlyClose);
        if (err) reject(err);
        else resolve();
      };
      const onError = (err: Error & { level?: string; code?: unknown }): void => {
        // Agent trouble and a key that cannot sign are not fatal: ssh2 goes on with the next method.
        if (err.level === 'agent') {
          log(`auth: ssh-agent error: ${err.message}`);
          return;
        }
        if (err.level === 'client-authentication' && !/All configured authentication methods failed/.test(err.message)) {
          log(`auth: ${err.message}`);
          return;
        }
        finish(handshakeError(err));
      };
      const onReady = (): void => finish();
      const onEarlyClose = (): void => finish(hostKeyError ?? (auth.started() ? auth.failure() :
        fail('connect', `${who}: connection to ${addr} closed during the SSH handshake`, 'check that this port is an SSH server and that it accepts this client (MaxStartups, firewall)')));
      client.on('error', onError);
      client.once('ready', onReady);
      client.once('close', onEarlyClose);
      try {
        client.connect(config);
      } catch (err) {
        finish(fail('connect', `${who}: cannot start SSH: ${(err as Error).message}`, 'this is a bug in herd; please report it'));
      }
    });
  } catch (err) {
    client.destroy();
    sock.destroy();
    jump?.release();
    throw err;
  }
  log(`authenticated as ${r.user} with ${auth.succeeded()} in ${Date.now() - started} ms`);

  function handshakeError(err: Error & { level?: string; code?: unknown }): SshError {
    if (hostKeyError) return hostKeyError;
    if (err.level === 'client-authentication') return auth.failure();
    if (err.level === 'client-timeout') {
      return fail('timeout', `${who}: timed out after ${Math.round(timeoutMs / 1000)} s waiting for the SSH handshake with ${addr}`,
        'check that the host is up and this port is its sshd (ConnectTimeout in the ssh config sets the limit)');
    }
    if (err.level === 'client-socket') return socketError(who, err as NodeJS.ErrnoException, r.hostname, r.port);
    if (typeof err.code === 'number' && auth.started()) return auth.failure(err.message);
    if (/before handshake/i.test(err.message)) {
      return fail('connect', `${who}: ${addr} closed the connection before the SSH banner`, 'is sshd running on that port (and not refusing this address)?');
    }
    if (/no matching/i.test(err.message)) {
      return fail('connect', `${who}: SSH negotiation with ${addr} failed (${err.message})`, 'the server offers no algorithm ssh2 supports; check its KexAlgorithms/HostKeyAlgorithms');
    }
    return fail('connect', `${who}: SSH handshake with ${addr} failed (${err.message})`, 'check that this is an SSH server and retry');
  }

  // Life after ready: one close notification, with the reason if it was not our close().
  let closed = false;
  let closing = false;
  let closeErr: Error | undefined;
  const closeCbs: Array<(err?: Error) => void> = [];
  client.on('error', (err: Error & { level?: string }) => {
    if (closeErr || closing) return;
    closeErr = err.level === 'client-timeout'
      ? fail('timeout', `${who}: connection to ${addr} lost (no answer to ${keepalive.count} keepalives every ${Math.round(keepalive.interval / 1000)} s)`, 'check the network path to the host')
      : fail('connect', `${who}: connection to ${addr} failed (${err.message})`, 'check the network path to the host');
  });
  client.once('close', () => {
    if (closed) return;
    closed = true;
    sock.destroy(); // ends a ProxyCommand that ignores EOF
    if (!closing && !closeErr) {
      closeErr = fail('connect', `${who}: connection closed by ${addr}`, 'the host closed the SSH connection (sshd restart or reboot?)');
    }
    jump?.release();
    const err = closing ? undefined : closeErr;
    for (const cb of closeCbs.splice(0)) cb(err);
  });
  jump?.conn.onClose((err) => {
    if (err && !closeErr && !closing) closeErr = err;
    if (!closed) client.destroy();
  });

  const conn: BuiltinConnection = {
    label,
    resolved: r,
    transport: 'builtin',
    localAddress,
    viaJump: r.jump !== undefined || r.proxyCommand !== undefined,
    client,
    exec(command: string): Promise<ClientChannel> {
      return new Promise((resolve, reject) => {
        const onErr = (err: Error): void =>
          reject(fail('channel', `${who}: cannot start a remote command (${err.message})`, 'the connection may have dropped, or sshd MaxSessions was reached'));
        try {
          client.exec(command, (err, ch) => (err ? onErr(err) : resolve(ch)));
        } catch (err) {
          onErr(err as Error);
        }
      });
    },
    forwardToRunner: (to) => openTunnel(client, to),
    close(): void {
      if (closed || closing) return;
      closing = true;
      client.end();
      // A dead link never answers the disconnect: do not wait for it.
      setTimeout(() => {
        if (!closed) client.destroy();
      }, 2000).unref();
    },
    onClose(cb: (err?: Error) => void): void {
      if (closed) {
        const err = closing ? undefined : closeErr;
        queueMicrotask(() => cb(err));
      } else {
        closeCbs.push(cb);
      }
    },
  };
  return conn;
}

// ---------------------------------------------------------------------------------------------
// Transport

function tcpConnect(who: string, host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(fail('timeout', `${who}: timed out connecting to ${host}:${port} after ${Math.round(timeoutMs / 1000)} s`,
        'check the address, the port and any firewall between here and the host'));
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(socketError(who, err, host, port));
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeListener('error', onError);
      sock.setNoDelay(true);
      sock.setKeepAlive(true, 15_000);
      resolve(sock);
    });
  });
}

function socketError(who: string, err: NodeJS.ErrnoException, host: string, port: number): SshError {
  const inner = (err as NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] }).errors?.[0];
  const code = err.code ?? inner?.code ?? '';
  const address = (err as { address?: string }).address ?? (inner as { address?: string } | undefined)?.address ?? host;
  switch (code) {
    case 'ECONNREFUSED':
      return fail('connect', `${who}: connection refused at ${address}:${port}`, 'is sshd running there, and is the port right?');
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return fail('connect', `${who}: no route to ${address}:${port} (${code})`, 'check the address and the network (VPN, routes, firewall)');
    case 'ETIMEDOUT':
      return fail('timeout', `${who}: timed out connecting to ${address}:${port}`, 'check the address, the port and any firewall between here and the host');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return fail('connect', `${who}: cannot resolve host name ${host} (${code})`, 'check the name, or the HostName in ~/.ssh/config');
    case 'ECONNRESET':
    case 'EPIPE':
      return fail('connect', `${who}: connection to ${host}:${port} reset (${code})`, 'check that this port is sshd and that no firewall drops the connection');
    default:
      return fail('connect', `${who}: cannot connect to ${host}:${port} (${err.message})`, 'check the address, the port and the network');
  }
}

function forwardOut(client: SshClient, host: string, port: number, timeoutMs: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer after ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    try {
      // Originator 127.0.0.1:0 like `ssh -W`; the jump host resolves `host` itself.
      client.forwardOut('127.0.0.1', 0, host, port, (err, stream) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(stream);
      });
    } catch (err) {
      clearTimeout(timer);
      reject(err);
    }
  });
}

/** ProxyCommand's stdin/stdout as a stream for ssh2, run like OpenSSH does (`exec` in /bin/sh). */
function proxyCommandStream(command: string, log: SshLog): Duplex {
  // Never the Action's inputs (its key among them) or herd's passphrase: the command is the config's.
  const child = spawn('/bin/sh', ['-c', `exec ${command}`], { stdio: ['pipe', 'pipe', 'pipe'], env: scrubbedEnv() });
  const stream = new Duplex({
    read() {
      child.stdout.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      child.stdin.write(chunk, (err) => cb(err ?? null));
    },
    final(cb) {
      child.stdin.end();
      cb();
    },
    destroy(err, cb) {
      child.stdin.destroy();
      child.stdout.destroy();
      if (child.exitCode === null) child.kill();
      cb(err);
    },
  });
  child.stdout.on('data', (d: Buffer) => {
    if (!stream.push(d)) child.stdout.pause();
  });
  child.stdout.on('end', () => stream.push(null));
  child.stdin.on('error', () => {}); // EPIPE after the command died: reported through exit below
  let stderrTail = '';
  child.stderr.on('data', (d: Buffer) => {
    stderrTail = (stderrTail + d.toString('utf8')).slice(-2000);
  });
  child.on('error', (err) => stream.destroy(new Error(`ProxyCommand failed to start: ${err.message}`)));
  child.on('exit', (code, signal) => {
    const tail = stderrTail.trim().split('\n').pop();
    if (code !== 0 && !stream.destroyed) log(`ProxyCommand exited with ${code ?? signal}${tail ? `: ${tail}` : ''}`);
  });
  return stream;
}

function unmapV4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
