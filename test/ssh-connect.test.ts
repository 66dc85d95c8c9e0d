// connectHost against a real sshd on 127.0.0.1 started by this test (keys, known_hosts, jump, agent).
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  connectHost,
  fingerprint,
  formatKnownHostsLine,
  SshError,
  type SshConnection,
  type SshSettings,
} from '../src/core/ssh/index.js';
import { AttemptError } from '../src/core/attempt.js';
import { execCollect } from '../src/core/remote-folder.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'herd-sshd-'));
const user = os.userInfo().username;
const children: ChildProcess[] = [];
let port = 0;
let hostBlob: Buffer;
let otherHostBlob: Buffer;
const P = (name: string): string => path.join(dir, name);

function keygen(name: string, type: string, passphrase = ''): void {
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-C', `herd-test-${name}`, '-f', P(name)]);
}

function pubBlob(name: string): Buffer {
  return Buffer.from(readFileSync(P(`${name}.pub`), 'utf8').split(' ')[1]!, 'base64');
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const p = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return p;
}

async function waitForPort(p: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(p, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`sshd did not listen on ${p}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  keygen('host_ed25519', 'ed25519');
  keygen('host_ecdsa', 'ecdsa');
  keygen('other_host', 'ed25519');
  keygen('client', 'ed25519');
  keygen('client_enc', 'ed25519', 'correct horse');
  keygen('stranger', 'ed25519'); // not in authorized_keys
  keygen('agent_key', 'ecdsa');
  hostBlob = pubBlob('host_ed25519');
  otherHostBlob = pubBlob('other_host');
  writeFileSync(P('authorized_keys'), ['client', 'client_enc', 'agent_key'].map((k) => readFileSync(P(`${k}.pub`), 'utf8')).join(''));
  port = await freePort();
  writeFileSync(P('sshd_config'), [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${P('host_ed25519')}`,
    `HostKey ${P('host_ecdsa')}`,
    `PidFile ${P('sshd.pid')}`,
    `AuthorizedKeysFile ${P('authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    'AllowTcpForwarding yes',
    'Subsystem sftp internal-sftp',
    'LogLevel ERROR',
    '',
  ].join('\n'));
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true });
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', P('sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  sshd.stderr!.on('data', (d: Buffer) => process.stderr.write(`[sshd] ${d}`));
  children.push(sshd);
  await waitForPort(port, 5000);

  writeFileSync(P('known_hosts_hashed'), `${formatKnownHostsLine('127.0.0.1', port, hostBlob, { hash: true })}\n`);
  writeFileSync(P('known_hosts_changed'), `# an old key\n${formatKnownHostsLine('127.0.0.1', port, otherHostBlob)}\n`);
  writeFileSync(P('known_hosts_empty'), '');
  writeFileSync(P('known_hosts_ecdsa'), `${formatKnownHostsLine('127.0.0.1', port, pubBlob('host_ecdsa'))}\n`);
  writeFileSync(P('config'), `
Host web1
  HostName 127.0.0.1
  Port ${port}
  User ${user}
  IdentityFile ${P('client')}
  UserKnownHostsFile ${P('known_hosts_hashed')}
  GlobalKnownHostsFile none

Host via-jump
  HostName 127.0.0.1
  Port ${port}
  User ${user}
  ProxyJump web1
  IdentityFile ${P('client')}
  UserKnownHostsFile ${P('known_hosts_hashed')}
  GlobalKnownHostsFile none

Host jump-to-closed
  HostName 127.0.0.1
  Port 1
  ProxyJump web1

Host lax-new lax-changed
  HostName 127.0.0.1
  Port ${port}
  User ${user}
  IdentityFile ${P('client')}
  StrictHostKeyChecking no
  GlobalKnownHostsFile none

Host lax-new
  UserKnownHostsFile ${P('known_hosts_lax')}

Host lax-changed
  UserKnownHostsFile ${P('known_hosts_changed')}

Host via-command
  HostName 127.0.0.1
  Port ${port}
  User ${user}
  ProxyCommand ${process.execPath} -e "const s=require('net').connect(%p,'%h');process.stdin.pipe(s);s.pipe(process.stdout);s.on('close',()=>process.exit(0))"
  IdentityFile ${P('client')}
  UserKnownHostsFile ${P('known_hosts_hashed')}
  GlobalKnownHostsFile none

Host lenient
  HostName 127.0.0.1
  Port ${port}
  User ${user}
  IdentityFile ${P('client')}
  StrictHostKeyChecking accept-new
  HashKnownHosts yes
  UserKnownHostsFile ${P('known_hosts_lenient')}
  GlobalKnownHostsFile none

Host keyless
  HostName 127.0.0.1
  Port ${port}
  User ${user}
  IdentityFile ${P('does-not-exist')}
  UserKnownHostsFile ${P('known_hosts_hashed')}
  GlobalKnownHostsFile none
`);
});

after(() => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

function settings(over: Partial<SshSettings> = {}): SshSettings {
  return {
    configPath: P('config'),
    identityFiles: [],
    knownHostsFiles: [],
    hostKeyPolicy: 'strict',
    connectTimeoutMs: 5000,
    keepaliveIntervalMs: 5000,
    agentSocket: '',
    ...over,
  };
}

async function run(conn: SshConnection, command: string): Promise<{ out: string; code: number | null }> {
  const ch = await conn.exec(command);
  let out = '';
  ch.on('data', (d: Buffer) => { out += d.toString(); });
  ch.stderr.resume();
  const code = await new Promise<number | null>((resolve) => ch.on('close', (c: number | null) => resolve(c)));
  return { out, code };
}

async function rejectsKind(p: Promise<unknown>, kind: SshError['kind'], re?: RegExp): Promise<SshError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SshError, `expected SshError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    if (re) assert.match(err.message, re);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err;
  }
  assert.fail(`expected ${kind}`);
}

test('config alias + hashed known_hosts: exec, localAddress, log has no secrets', async () => {
  const lines: string[] = [];
  const conn = await connectHost({ host: 'web1', label: 'web-1' }, settings(), (l) => lines.push(l));
  try {
    assert.equal(conn.localAddress, '127.0.0.1');
    assert.equal(conn.viaJump, false);
    assert.equal(conn.resolved.port, port);
    assert.deepEqual(await run(conn, 'echo ok'), { out: 'ok\n', code: 0 });
    assert.match((await run(conn, `ls ${dir}`)).out, /sshd_config/);
  } finally {
    conn.close();
  }
  const log = lines.join('\n');
  assert.match(log, new RegExp(`matches .*known_hosts_hashed:1`));
  assert.ok(log.includes(fingerprint(hostBlob)));
  assert.match(log, /authenticated as .* with .*client \(ssh-ed25519 SHA256:/);
  assert.ok(!/PRIVATE KEY|correct horse/.test(log));
  // The promise: OpenSSH agrees with the same config.
  const ssh = spawnSync('ssh', ['-F', P('config'), '-o', 'BatchMode=yes', 'web1', 'true'], { encoding: 'utf8' });
  assert.equal(ssh.status, 0, ssh.stderr);
});

test('unknown host key is refused with the fingerprint and the fix', async () => {
  const err = await rejectsKind(
    connectHost({ host: 'web1', label: 'web-1' }, settings({ knownHostsFiles: [P('known_hosts_empty')] }), () => {}),
    'host-key-unknown',
    /^web-1: host key for \[127\.0\.0\.1\]:\d+ is not known/,
  );
  assert.ok(err.message.includes(fingerprint(hostBlob)));
  assert.match(err.hint, new RegExp(`ssh-keyscan -p ${port} 127\\.0\\.0\\.1 >> .*known_hosts_empty`));
});

test('changed host key is refused naming the file and line, even with accept-new', async () => {
  for (const hostKeyPolicy of ['strict', 'accept-new'] as const) {
    const err = await rejectsKind(
      connectHost({ host: 'web1', label: 'web-1' }, settings({ hostKeyPolicy, knownHostsFiles: [P('known_hosts_changed')] }), () => {}),
      'host-key-changed',
      /HOST KEY CHANGED .*known_hosts_changed:2/,
    );
    assert.match(err.hint, /ssh-keygen -R '\[127\.0\.0\.1\]:\d+' -f /);
  }
  assert.equal(readFileSync(P('known_hosts_changed'), 'utf8').split('\n').length, 3, 'accept-new wrote nothing');
});

test('accept-new records the key, then strict works', async () => {
  const kh = P('known_hosts_new');
  const lines: string[] = [];
  const conn = await connectHost({ host: 'web1', label: 'web-1' }, settings({ hostKeyPolicy: 'accept-new', knownHostsFiles: [kh] }), (l) => lines.push(l));
  conn.close();
  assert.match(lines.join('\n'), /was new; added to/);
  assert.match(execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${port}`, '-f', kh]).toString(), /found: line 1/);
  const again = await connectHost({ host: 'web1', label: 'web-1' }, settings({ knownHostsFiles: [kh] }), () => {});
  again.close();
});

test('StrictHostKeyChecking no in the ssh config records a new key but never accepts a changed one, nor beats --known-hosts', async () => {
  const lines: string[] = [];
  const conn = await connectHost({ host: 'lax-new', label: 'lax' }, settings(), (l) => lines.push(l));
  conn.close();
  assert.match(lines.join('\n'), /host key policy accept-new \(StrictHostKeyChecking no in ssh config; a changed key still fails\)/);
  assert.match(readFileSync(P('known_hosts_lax'), 'utf8'), /ssh-ed25519|ecdsa/);
  await rejectsKind(connectHost({ host: 'lax-changed', label: 'lax' }, settings(), () => {}), 'host-key-changed', /HOST KEY CHANGED/);
  // The user's own known_hosts given to herd: the config's StrictHostKeyChecking is not read at all.
  await rejectsKind(
    connectHost({ host: 'lax-new', label: 'lax' }, settings({ knownHostsFiles: [P('absent')] }), () => {}),
    'host-key-unknown',
    /host key for .* is not known/,
  );
  assert.ok(!existsSync(P('absent')));
});

test('encrypted identity: right passphrase works, wrong or missing is an identity error', async () => {
  const base = { host: '127.0.0.1', port, user, label: 'enc' };
  const s = settings({ identityFiles: [P('client_enc')], knownHostsFiles: [P('known_hosts_hashed')] });
  const lines: string[] = [];
  const conn = await connectHost(base, { ...s, passphrase: 'correct horse' }, (l) => lines.push(l));
  assert.deepEqual(await run(conn, 'echo ok'), { out: 'ok\n', code: 0 });
  conn.close();
  assert.ok(!lines.join('\n').includes('correct horse'));
  await rejectsKind(connectHost(base, { ...s, passphrase: 'wrong' }, () => {}), 'identity', /wrong passphrase for identity file .*client_enc/);
  const err = await rejectsKind(connectHost(base, s, () => {}), 'identity', /client_enc is encrypted and no passphrase was given/);
  assert.match(err.hint, /passphrase/);
});

test('auth failures list what was tried; a missing -i file fails before connecting', async () => {
  const base = { host: '127.0.0.1', port, user, label: 'web-9' };
  const s = settings({ knownHostsFiles: [P('known_hosts_hashed')] });
  const err = await rejectsKind(connectHost(base, { ...s, identityFiles: [P('stranger')] }, () => {}), 'auth', /^web-9: permission denied \(publickey\) for .*tried: .*stranger/);
  assert.match(err.hint, /authorized_keys/);
  await rejectsKind(connectHost(base, { ...s, identityFiles: [P('nope')] }, () => {}), 'identity', /identity file .*nope cannot be read \(ENOENT\)/);
  await rejectsKind(connectHost({ host: 'keyless', label: 'keyless' }, s, () => {}), 'auth', /no key to offer/);
});

test('ssh-agent is tried first and IdentitiesOnly filters its keys', async () => {
  const sock = P('agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  children.push(agent);
  try {
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
    execFileSync('ssh-add', ['-q', P('agent_key')], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
    const lines: string[] = [];
    const conn = await connectHost({ host: 'keyless', label: 'keyless' }, settings({ agentSocket: sock }), (l) => lines.push(l));
    conn.close();
    assert.ok(lines.join('\n').includes(`with ssh-agent key ecdsa-sha2-nistp256 ${fingerprint(pubBlob('agent_key'))}`), lines.join('\n'));
    // IdentitiesOnly with an identity that is not the agent's key: the agent key is hidden.
    writeFileSync(P('config_only'), `Host only\n  HostName 127.0.0.1\n  Port ${port}\n  User ${user}\n  IdentitiesOnly yes\n  IdentityFile ${P('stranger')}\n  UserKnownHostsFile ${P('known_hosts_hashed')}\n`);
    const only: string[] = [];
    await rejectsKind(connectHost({ host: 'only', label: 'only' }, settings({ configPath: P('config_only'), agentSocket: sock }), (l) => only.push(l)), 'auth');
    assert.match(only.join('\n'), /ssh-agent offers 1 key\(s\), 0 allowed by IdentitiesOnly/);
  } finally {
    agent.kill('SIGTERM');
  }
});

test('ProxyJump goes through the jump host; an unreachable target is a jump error', async () => {
  const lines: string[] = [];
  const conn = await connectHost({ host: 'via-jump', label: 'inner' }, settings(), (l) => lines.push(l));
  try {
    assert.equal(conn.viaJump, true);
    assert.equal(conn.localAddress, '127.0.0.1');
    assert.deepEqual(await run(conn, 'echo ok'), { out: 'ok\n', code: 0 });
  } finally {
    conn.close();
  }
  assert.match(lines.join('\n'), /\[jump web1\] authenticated/);
  await rejectsKind(connectHost({ host: 'jump-to-closed', label: 'closed' }, settings(), () => {}), 'jump', /^closed: jump host web1 cannot open a connection to 127\.0\.0\.1:1/);
});

test('ProxyCommand works like ssh runs it', async () => {
  const conn = await connectHost({ host: 'via-command', label: 'cmd' }, settings(), () => {});
  try {
    assert.equal(conn.viaJump, true);
    assert.deepEqual(await run(conn, 'echo ok'), { out: 'ok\n', code: 0 });
  } finally {
    conn.close();
  }
});

test('refused, silent and closing servers map to clear errors', async () => {
  const closedPort = await freePort();
  await rejectsKind(connectHost({ host: '127.0.0.1', port: closedPort, label: 'dead' }, settings(), () => {}), 'connect',
    new RegExp(`^dead: connection refused at 127\\.0\\.0\\.1:${closedPort}; is sshd running`));
  const silent = net.createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const silentPort = (silent.address() as net.AddressInfo).port;
    await rejectsKind(connectHost({ host: '127.0.0.1', port: silentPort, label: 'mute' }, settings({ connectTimeoutMs: 700 }), () => {}), 'timeout', /timed out/);
  } finally {
    silent.close();
  }
  await rejectsKind(connectHost({ host: 'no-such-host.invalid', label: 'typo' }, settings(), () => {}), 'connect', /cannot resolve host name no-such-host\.invalid/);
});

test('onClose: no error after close(), an SshError when the server drops us', async () => {
  const conn = await connectHost({ host: 'web1', label: 'web-1' }, settings(), () => {});
  const closed = new Promise<Error | undefined>((resolve) => conn.onClose(resolve));
  conn.close();
  assert.equal(await closed, undefined);
  assert.equal(await new Promise<Error | undefined>((resolve) => conn.onClose(resolve)), undefined, 'late subscribers hear it too');

  const victim = await connectHost({ host: 'web1', label: 'web-1' }, settings(), () => {});
  const dropped = new Promise<Error | undefined>((resolve) => victim.onClose(resolve));
  const ch = await victim.exec('kill -9 $PPID'); // the per-session sshd process
  ch.resume();
  const err = await dropped;
  assert.ok(err instanceof SshError, String(err));
  assert.match(err.message, /^web-1: connection/);
});

test('StrictHostKeyChecking accept-new in the ssh config is honoured, with HashKnownHosts', async () => {
  const lines: string[] = [];
  const conn = await connectHost({ host: 'lenient', label: 'lenient' }, settings(), (l) => lines.push(l));
  conn.close();
  assert.match(lines.join('\n'), /host key policy accept-new \(StrictHostKeyChecking accept-new in ssh config; a changed key still fails\)/);
  assert.match(readFileSync(P('known_hosts_lenient'), 'utf8'), /^\|1\|/);
  assert.match(execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${port}`, '-f', P('known_hosts_lenient')]).toString(), /found: line 1/);
});

/** Processes named `comm` whose parent is `ppid`, from /proc. */
function childrenNamed(ppid: number, comm: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat = '';
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
    if (m && m[1] === comm && Number(m[2]) === ppid) found.push(Number(name));
  }
  return found;
}

test('keepalives notice a frozen server; a command running then fails naming why', async () => {
  const conn = await connectHost({ host: 'web1', label: 'web-1' }, settings({ keepaliveIntervalMs: 200 }), () => {});
  const pid = Number((await run(conn, 'echo $PPID')).out.trim()); // the session's sshd process
  assert.ok(pid > 1);
  const closed = new Promise<Error | undefined>((resolve) => conn.onClose(resolve));
  const running = execCollect(conn, 'exec sleep 30');
  running.catch(() => {}); // awaited below
  const began = Date.now();
  while (childrenNamed(pid, 'sleep').length === 0) {
    assert.ok(Date.now() - began < 10_000, 'the command did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  process.kill(pid, 'SIGSTOP');
  try {
    const err = await closed;
    assert.ok(err instanceof SshError, String(err));
    assert.equal(err.kind, 'timeout');
    assert.match(err.message, /^web-1: connection to 127\.0\.0\.1:\d+ lost \(no answer to 3 keepalives/);
    // The command's caller hears why, not an exit status of null.
    await assert.rejects(running, (e: Error) => e instanceof AttemptError && /^the connection was lost: connection to 127\.0\.0\.1:\d+ lost \(no answer to 3 keepalives/.test(e.message));
  } finally {
    process.kill(pid, 'SIGKILL');
    for (const child of childrenNamed(pid, 'sleep')) process.kill(child, 'SIGKILL');
  }
});

test('the host key type on record is preferred, as OpenSSH does', async () => {
  const lines: string[] = [];
  const conn = await connectHost({ host: 'web1', label: 'web-1' }, settings({ knownHostsFiles: [P('known_hosts_ecdsa')] }), (l) => lines.push(l));
  conn.close();
  assert.match(lines.join('\n'), /host key ecdsa-sha2-nistp256 .* matches .*known_hosts_ecdsa:1/);
});
