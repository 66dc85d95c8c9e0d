// SshError: one line naming the host, what went wrong and the fix, with a kind callers can act on; and the
// mapping of socket and handshake failures to it.
import os from 'node:os';

export type SshErrorKind =
  | 'resolve'
  | 'connect'
  | 'timeout'
  | 'host-key-unknown'
  | 'host-key-changed'
  | 'host-key-revoked'
  | 'auth'
  | 'identity'
  | 'jump'
  | 'channel';

/** One line that names the host, what went wrong and the fix; `message` ends with `; ${hint}`. */
export class SshError extends Error {
  constructor(
    public kind: SshErrorKind,
    message: string,
    public hint: string,
  ) {
    super(message);
    this.name = 'SshError';
  }
}

/** An SshError whose message is `${what}; ${hint}`. */
export function fail(kind: SshErrorKind, what: string, hint: string): SshError {
  return new SshError(kind, `${what}; ${hint}`, hint);
}

/** A path for messages: `~/...` under the home directory. */
export function tildePath(p: string): string {
  const home = os.homedir();
  return home && home !== '/' && p.startsWith(`${home}/`) ? `~/${p.slice(home.length + 1)}` : p;
}

/** A socket's failure as the one line a user can act on (refused, no route, unknown name...). */
export function socketError(who: string, err: NodeJS.ErrnoException, host: string, port: number): SshError {
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

/** What the handshake knew when ssh2 gave up: the host key it refused, where authentication stood. */
export interface HandshakeContext {
  who: string;
  host: string;
  port: number;
  timeoutMs: number;
  refusedKey?: SshError;
  auth: { started(): boolean; failure(serverMessage?: string): SshError };
}

/** An ssh2 client error during the handshake as the cause a user can act on. */
export function handshakeError(err: Error & { level?: string; code?: unknown }, c: HandshakeContext): SshError {
  const addr = `${c.host}:${c.port}`;
  if (c.refusedKey) return c.refusedKey;
  if (err.level === 'client-authentication') return c.auth.failure();
  if (err.level === 'client-timeout') {
    return fail('timeout', `${c.who}: timed out after ${Math.round(c.timeoutMs / 1000)} s waiting for the SSH handshake with ${addr}`,
      'check that the host is up and this port is its sshd (ConnectTimeout in the ssh config sets the limit)');
  }
  if (err.level === 'client-socket') return socketError(c.who, err as NodeJS.ErrnoException, c.host, c.port);
  if (typeof err.code === 'number' && c.auth.started()) return c.auth.failure(err.message);
  if (/before handshake/i.test(err.message)) {
    return fail('connect', `${c.who}: ${addr} closed the connection before the SSH banner`, 'is sshd running on that port (and not refusing this address)?');
  }
  if (/no matching/i.test(err.message)) {
    return fail('connect', `${c.who}: SSH negotiation with ${addr} failed (${err.message})`, 'the server offers no algorithm ssh2 supports; check its KexAlgorithms/HostKeyAlgorithms');
  }
  return fail('connect', `${c.who}: SSH handshake with ${addr} failed (${err.message})`, 'check that this is an SSH server and retry');
}
