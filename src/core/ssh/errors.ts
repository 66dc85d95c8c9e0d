// SshError: one line naming the host, what went wrong and the fix, with a kind callers can act on.
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
