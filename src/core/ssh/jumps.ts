// Jump hosts shared by every host behind them: one SSH connection per bastion, one channel per host over it.
import { SshError } from './errors.js';
import type { ResolvedHost } from './config.js';
import type { SshConnection } from './connection.js';

interface Entry {
  opening: Promise<SshConnection>;
  users: number;
  /** The host whose attempt opened it: its name is in the messages of a failure to open. */
  openedFor: string;
}

const open = new Map<string, Entry>();

/** Which jumps are the same connection: user, address, port and the way there. */
export function jumpKey(r: ResolvedHost): string {
  const via = r.jump ? ` via ${jumpKey(r.jump)}` : r.proxyCommand ? ` via ProxyCommand ${r.proxyCommand}` : '';
  return `${r.user}@${r.hostname}:${r.port}${via}`;
}

/** A jump connection for one host's use; release() when that host's connection ends. */
export interface JumpLease<C extends SshConnection> {
  conn: C;
  /** True when another host had opened it already. */
  shared: boolean;
  release(): void;
}

/**
 * The open connection to jump host `r`, or a new one from `connect` when there is none: hosts that
 * start together wait for the same handshake, so a bastion sees one session from the runner whatever
 * the number of hosts behind it (its MaxStartups is never the limit). It closes with its last user.
 */
export async function leaseJump<C extends SshConnection>(r: ResolvedHost, label: string, connect: () => Promise<C>): Promise<JumpLease<C>> {
  const key = jumpKey(r);
  let entry = open.get(key);
  const shared = entry !== undefined;
  if (!entry) {
    const fresh: Entry = { opening: connect(), users: 0, openedFor: label };
    open.set(key, fresh);
    const forget = () => {
      if (open.get(key) === fresh) open.delete(key);
    };
    fresh.opening.then((c) => c.onClose(forget), forget);
    entry = fresh;
  }
  const held = entry;
  held.users++;
  let conn: C;
  try {
    conn = (await held.opening) as C;
  } catch (err) {
    held.users--;
    // The failure of another host's attempt, told in this host's name.
    if (err instanceof SshError && held.openedFor !== label && err.message.startsWith(`${held.openedFor}: `)) {
      throw new SshError(err.kind, `${label}: ${err.message.slice(held.openedFor.length + 2)}`, err.hint);
    }
    throw err;
  }
  let released = false;
  return {
    conn,
    shared,
    release() {
      if (released) return;
      released = true;
      if (--held.users > 0) return;
      if (open.get(key) === held) open.delete(key);
      conn.close();
    },
  };
}
