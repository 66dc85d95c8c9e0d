// One host's session through the system's OpenSSH client: certificates, FIDO and PKCS#11 keys, GSSAPI,
// Match exec and the system config work exactly as `ssh HOST` does for the user. A ControlMaster
// connection per host carries every command, and remote forwards are asked of it (`-O forward`).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import type { ResolvedHost } from './config.js';
import type { HostSpec } from '../hosts.js';
import type { RemoteChannel, SshConnection, SshLog, SshSettings } from './connection.js';
import { fail, tildePath, type SshError } from './errors.js';
import { shellQuote } from './quote.js';
import { fixWords, type FrontEnd } from '../front-end.js';
import { ForwardRefused, type Tunnel } from './forward.js';

/** Variables a child ssh must never see: the Action's inputs (the key among them) and herd's passphrase. */
export function scrubbedEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!/^INPUT_/i.test(k) && k !== 'HERD_SSH_PASSPHRASE') out[k] = v;
  return out;
}

/** A child process's stdio as a remote command's channel: 'exit' (code, signal) then 'close'. */
class ProcessChannel extends Duplex {
  readonly stderr = new PassThrough();

  constructor(private readonly child: ChildProcess) {
    // 'close' is the child's, with its exit: the stream's own would come first and without it.
    super({ autoDestroy: false, emitClose: false, allowHalfOpen: true });
    child.stdout!.on('data', (d: Buffer) => {
      if (!this.push(d)) child.stdout!.pause();
    });
    child.stdout!.on('end', () => this.push(null));
    child.stderr!.pipe(this.stderr);
    child.stdin!.on('error', () => {}); // EPIPE once the command is gone: its exit tells the story
    child.on('exit', (code, signal) => this.emit('exit', code, signal ?? undefined));
    child.on('close', (code, signal) => {
      this.push(null);
      this.emit('close', code, signal ?? undefined);
    });
    child.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    this.child.stdout!.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.child.stdin!.write(chunk, (err) => cb(err ?? null));
  }

  override _final(cb: () => void): void {
    this.child.stdin!.end();
    cb();
  }

  close(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
  }
}

/** Runs `ssh ARGS` to its end and collects what it printed. */
function sshOnce(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'], env: scrubbedEnv() });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: err.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** OpenSSH's last words as an SshError with the kind herd's retry policy and messages use. */
function classify(who: string, r: ResolvedHost, stderr: string, frontEnd?: FrontEnd): SshError {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/^(Warning: Permanently added|Control socket)/.test(l));
  const last = lines.at(-1) ?? 'ssh exited without a message';
  const addr = `${r.user}@${r.hostname}:${r.port}`;
  if (/IDENTIFICATION HAS CHANGED|Host key for .* has changed/i.test(stderr)) {
    return fail('host-key-changed', `${who}: HOST KEY CHANGED for ${r.hostname} (OpenSSH: ${last})`, `if the change is expected, remove the old key with: ssh-keygen -R ${r.hostname}`);
  }
  if (/Host key verification failed|No .* host key is known/i.test(stderr)) {
    const words = fixWords(frontEnd);
    const port = r.port !== 22 ? `-p ${r.port} ` : '';
    const kh = r.userKnownHostsFiles[0] ? tildePath(r.userKnownHostsFiles[0]) : '~/.ssh/known_hosts';
    return fail('host-key-unknown', `${who}: host key for ${r.hostname} is not known (OpenSSH: ${last})`, `check its fingerprint with the host's owner, then ${words.addHostKey(`ssh-keyscan ${port}${shellQuote(r.hostname)}`, kh)}; or trust it on first use with ${words.acceptNew}`);
  }
  if (/REVOKED/i.test(stderr)) return fail('host-key-revoked', `${who}: the host key of ${r.hostname} is revoked (OpenSSH: ${last})`, 'the host must get a new host key');
  if (/Permission denied|Too many authentication failures/i.test(stderr)) {
    return fail('auth', `${who}: permission denied for ${addr} (OpenSSH: ${last})`, 'check that `ssh -o BatchMode=yes HOST true` works for you with the same config, keys and agent');
  }
  if (/Could not resolve hostname/i.test(stderr)) return fail('connect', `${who}: cannot resolve host name ${r.hostname} (OpenSSH: ${last})`, 'check the name, or the HostName in ~/.ssh/config');
  if (/timed out/i.test(stderr)) return fail('timeout', `${who}: timed out connecting to ${addr} (OpenSSH: ${last})`, 'check the address, the port and any firewall between here and the host');
  return fail('connect', `${who}: OpenSSH could not connect to ${addr}: ${last}`, 'check that `ssh -o BatchMode=yes HOST true` works for you');
}

/**
 * Opens a ControlMaster to `target` with the system's ssh and resolves once it is authenticated. The
 * user's choices in herd are passed as options (they beat the config, as in the built-in client): -i
 * keys, known_hosts files, the host-key policy (a changed key always fails), the connect timeout.
 */
export async function connectOpenSsh(target: HostSpec, r: ResolvedHost, settings: SshSettings, policy: 'strict' | 'accept-new', log: SshLog): Promise<SshConnection> {
  const who = target.label;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herd-ssh-'));
  const control = path.join(dir, 'c');
  const options = [
    ...(settings.configPath ? ['-F', settings.configPath] : []),
    '-o', 'BatchMode=yes',
    '-o', `StrictHostKeyChecking=${policy === 'strict' ? 'yes' : 'accept-new'}`,
    '-o', `ConnectTimeout=${Math.ceil((r.connectTimeoutMs ?? settings.connectTimeoutMs) / 1000)}`,
    ...(r.serverAliveIntervalMs === undefined ? ['-o', `ServerAliveInterval=${Math.ceil(settings.keepaliveIntervalMs / 1000)}`, '-o', 'ServerAliveCountMax=3'] : []),
    ...(settings.knownHostsFiles.length ? ['-o', `UserKnownHostsFile=${settings.knownHostsFiles.map((f) => f.replace(/ /g, '\\ ')).join(' ')}`] : []),
    ...settings.identityFiles.flatMap((f) => ['-i', f]),
    '-l', r.user,
    '-p', String(r.port),
    '-o', `ControlPath=${control}`,
  ];
  const master = spawn('ssh', [...options, '-o', 'ControlMaster=yes', '-o', 'ControlPersist=no', '-N', '-T', '--', target.host], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: scrubbedEnv(),
  });
  let masterErr = '';
  master.stderr.on('data', (d: Buffer) => (masterErr = (masterErr + d.toString()).slice(-4000)));
  const masterExit = new Promise<number | null>((resolve) => {
    master.on('error', (err) => {
      masterErr += err.message;
      resolve(null);
    });
    master.on('exit', (code) => resolve(code));
  });
  let exited = false;
  void masterExit.then(() => (exited = true));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  log(`connecting with OpenSSH (ssh ${options.slice(0, -2).join(' ')} ${target.host})`);
  const began = Date.now();
  const deadline = began + (r.connectTimeoutMs ?? settings.connectTimeoutMs) * 2 + 5000;
  // Ready once the master answers on its socket; gone if it exits first.
  for (;;) {
    if (exited) {
      cleanup();
      throw classify(who, r, masterErr, settings.frontEnd);
    }
    const check = await sshOnce(['-o', `ControlPath=${control}`, '-O', 'check', '--', target.host], 5000);
    if (check.code === 0) break;
    if (Date.now() > deadline) {
      master.kill('SIGKILL');
      cleanup();
      throw fail('timeout', `${who}: OpenSSH did not connect to ${r.user}@${r.hostname}:${r.port} in ${Math.round((Date.now() - began) / 1000)} s`, 'check that `ssh -o BatchMode=yes HOST true` works for you');
    }
    await new Promise((res) => setTimeout(res, exited ? 0 : 50));
  }
  log(`authenticated with OpenSSH in ${Date.now() - began} ms`);
  const mux = ['-o', `ControlPath=${control}`, '-o', 'ControlMaster=no', '-T'];
  // The runner as the host sees it (sshd's SSH_CONNECTION): right through NAT too.
  const seen = await sshOnce([...mux, '--', target.host, 'echo "$SSH_CONNECTION"'], 15_000);
  const viaJump = r.jump !== undefined || r.proxyCommand !== undefined;
  const localAddress = seen.stdout.trim().split(/\s+/)[0] ?? '';

  let closing = false;
  const closeCbs: Array<(err?: Error) => void> = [];
  let closeErr: Error | undefined;
  void masterExit.then(() => {
    cleanup();
    if (!closing) closeErr = fail('connect', `${who}: the OpenSSH connection to ${r.hostname} ended (${masterErr.trim().split('\n').pop() || 'no message'})`, 'check the network path to the host');
    for (const cb of closeCbs.splice(0)) cb(closing ? undefined : closeErr);
  });

  return {
    label: who,
    resolved: r,
    transport: 'openssh',
    localAddress,
    viaJump,
    async exec(command: string): Promise<RemoteChannel> {
      if (exited) throw fail('channel', `${who}: cannot start a remote command (the OpenSSH connection has ended)`, 'the connection dropped; it is retried');
      const child = spawn('ssh', [...mux, '--', target.host, command], { stdio: ['pipe', 'pipe', 'pipe'], env: scrubbedEnv() });
      return new ProcessChannel(child) as unknown as RemoteChannel;
    },
    async forwardToRunner(to): Promise<Tunnel> {
      const ports: number[] = [];
      for (const port of [to.seederPort, to.trackerPort]) {
        const r2 = await sshOnce(['-o', `ControlPath=${control}`, '-O', 'forward', '-R', `0:127.0.0.1:${port}`, '--', target.host], 15_000);
        const allocated = Number(/^(\d+)\s*$/m.exec(r2.stdout)?.[1])
        if (r2.code !== 0 || !(allocated > 0)) throw new ForwardRefused(r2.stderr.trim().split('\n').pop() || `ssh -O forward exited ${r2.code}`);
        ports.push(allocated);
      }
      return { seederPort: ports[0]!, trackerPort: ports[1]!, connections: () => 0, close: () => {} };
    },
    close(): void {
      if (closing) return;
      closing = true;
      if (!exited) master.kill('SIGTERM');
    },
    onClose(cb: (err?: Error) => void): void {
      if (exited) queueMicrotask(() => cb(closing ? undefined : closeErr));
      else closeCbs.push(cb);
    },
  };
}
