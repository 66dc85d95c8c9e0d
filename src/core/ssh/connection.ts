// What an SSH connection to a host is, whichever client carries it: the settings, the target, the interface.
import type { Duplex, Readable } from 'node:stream';
import type { ResolvedHost } from './config.js';
import type { FrontEnd } from '../front-end.js';
import type { Tunnel } from './forward.js';

export interface SshSettings {
  /** ssh config file; default ~/.ssh/config (missing = empty). */
  configPath?: string;
  /** -i/--identity files, tried first (before the agent's keys, as OpenSSH); a missing one is an 'identity' error. */
  identityFiles: string[];
  /** --known-hosts files; when non-empty they replace UserKnownHostsFile (global files still count). */
  knownHostsFiles: string[];
  /** strict (default) refuses unknown keys; accept-new records unknown keys. A changed key always fails. */
  hostKeyPolicy: HostKeyPolicy;
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

export type HostKeyPolicy = 'strict' | 'accept-new';

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

/**
 * Why `conn` ended, without the host's label (the report names the host), if it ends within `ms`: a
 * channel closes a moment before its connection tells why. Undefined when it stays up that long or
 * ended by our own close().
 */
export function closeCause(conn: SshConnection, ms: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    conn.onClose((err) => {
      clearTimeout(timer);
      resolve(err ? err.message.replace(`${conn.label}: `, '') : undefined);
    });
  });
}
