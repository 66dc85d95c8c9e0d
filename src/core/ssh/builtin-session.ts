// A built-in (ssh2) connection once it is up: remote commands, forwards to the runner, and one close
// notification with the reason when it was not ours.
import type { Duplex } from 'node:stream';
import type { Client as SshClient, ClientChannel } from 'ssh2';
import type { ResolvedHost } from './config.js';
import type { SshConnection } from './connection.js';
import { fail } from './errors.js';
import { openTunnel } from './forward.js';
import type { JumpLease } from './jumps.js';

/** The built-in client's connection: its ssh2 client carries the channels of the hosts behind a jump. */
export interface BuiltinConnection extends SshConnection {
  client: SshClient;
}

/**
 * Calls `dead` once `count` keepalives in a row went out with nothing at all heard from the server since
 * (ssh2 sends one each interval, so a live server always has something to say). Any byte counts, as in
 * OpenSSH's ServerAliveCountMax: on an uplink saturated by the transfer a keepalive's reply waits behind
 * megabytes of queued data, while the server's window adjustments keep arriving. Returns the stop.
 */
function watchLiveness(sock: Duplex, keepalive: { interval: number; count: number }, dead: () => void): () => void {
  if (!(keepalive.interval > 0)) return () => {};
  let heard = true;
  let silent = 0;
  const onData = (): void => {
    heard = true;
  };
  sock.on('data', onData);
  const timer = setInterval(() => {
    silent = heard ? 0 : silent + 1;
    heard = false;
    if (silent >= keepalive.count) dead();
  }, keepalive.interval);
  timer.unref();
  return () => {
    clearInterval(timer);
    sock.removeListener('data', onData);
  };
}

/** A ready ssh2 client as a connection: `sock` is what it runs over, `jump` the jump lease it holds. */
export function builtinConnection(opts: {
  who: string;
  label: string;
  r: ResolvedHost;
  client: SshClient;
  sock: Duplex;
  localAddress: string;
  jump?: JumpLease<BuiltinConnection>;
  keepalive: { interval: number; count: number };
}): BuiltinConnection {
  const { who, r, client, sock, jump, keepalive } = opts;
  const addr = `${r.hostname}:${r.port}`;
  let closed = false;
  let closing = false;
  let closeErr: Error | undefined;
  const closeCbs: Array<(err?: Error) => void> = [];
  client.on('error', (err: Error & { level?: string }) => {
    if (closeErr || closing) return;
    closeErr = fail('connect', `${who}: connection to ${addr} failed (${err.message})`, 'check the network path to the host');
  });
  const stopWatch = watchLiveness(sock, keepalive, () => {
    if (closeErr || closing || closed) return;
    closeErr = fail('timeout', `${who}: connection to ${addr} lost (no answer to ${keepalive.count} keepalives every ${Math.round(keepalive.interval / 1000)} s)`, 'check the network path to the host');
    client.destroy();
  });
  client.once('close', () => {
    if (closed) return;
    closed = true;
    stopWatch();
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

  return {
    label: opts.label,
    resolved: r,
    transport: 'builtin',
    localAddress: opts.localAddress,
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
}
