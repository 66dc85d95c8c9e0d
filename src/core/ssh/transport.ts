// The byte stream under a built-in SSH connection: a TCP socket we own, a channel through a jump host, or
// a ProxyCommand's stdin and stdout.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { Client as SshClient, ClientChannel } from 'ssh2';
import type { ResolvedHost } from './config.js';
import type { SshLog } from './connection.js';
import { fail, socketError } from './errors.js';
import { leaseJump, type JumpLease } from './jumps.js';
import { scrubbedEnv } from './openssh.js';
import type { BuiltinConnection } from './builtin-session.js';

/** The stream to run SSH over, the runner's address as the far end sees it, and the jump it holds. */
export interface Transport {
  sock: Duplex;
  /** '' when unknown (ProxyCommand). */
  localAddress: string;
  jump?: JumpLease<BuiltinConnection>;
}

/**
 * Opens the way to `r`: through its ProxyJump (a connection shared with the other hosts behind that jump,
 * opened by `openJump` when there is none), its ProxyCommand, or a TCP connection of our own.
 */
export async function openTransport(
  who: string,
  label: string,
  r: ResolvedHost,
  timeoutMs: number,
  log: SshLog,
  openJump: (via: ResolvedHost) => Promise<BuiltinConnection>,
): Promise<Transport> {
  const addr = `${r.hostname}:${r.port}`;
  if (r.jump) {
    const via = r.jump;
    const jump = await leaseJump(via, label, () => openJump(via));
    if (jump.shared) log(`sharing the connection to jump host ${via.alias} with other hosts`);
    let sock: Duplex;
    try {
      sock = await forwardOut(jump.conn.client, r.hostname, r.port, timeoutMs);
    } catch (err) {
      jump.release();
      const reason = (err as Error).message.replace(/^\(SSH\) /, '');
      throw fail('jump', `${who}: jump host ${via.alias} cannot open a connection to ${addr} (${reason})`,
        'check the address and port as seen from the jump host, and that it allows TCP forwarding');
    }
    log(`tunnel to ${addr} opened through ${via.alias}`);
    return { sock, localAddress: jump.conn.localAddress, jump };
  }
  if (r.proxyCommand) {
    log(`starting ProxyCommand: ${r.proxyCommand}`);
    return { sock: proxyCommandStream(r.proxyCommand, log), localAddress: '' };
  }
  const tcp = await tcpConnect(who, r.hostname, r.port, timeoutMs);
  const localAddress = unmapV4(tcp.localAddress ?? '');
  log(`tcp connected to ${unmapV4(tcp.remoteAddress ?? r.hostname)}:${r.port} from ${localAddress}:${tcp.localPort}`);
  return { sock: tcp, localAddress };
}

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
