// resolveHost against temp ssh config files: aliases, precedence, tokens, ProxyJump, Include.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { parseProxyJump, parseUserHostPort, ResolveError, resolveHost, type ResolveOptions } from '../src/core/ssh/index.js';

const home = mkdtempSync(path.join(os.tmpdir(), 'herd-cfg-'));
mkdirSync(path.join(home, '.ssh'));
after(() => rmSync(home, { recursive: true, force: true }));

let n = 0;
function withConfig(text: string, extra: Partial<ResolveOptions> = {}): ResolveOptions {
  const configPath = path.join(home, `config-${n++}`);
  writeFileSync(configPath, text);
  return { configPath, homeDir: home, localUser: 'alice', env: {}, ...extra };
}

test('missing config: OpenSSH defaults', () => {
  const r = resolveHost({ host: 'web1' }, { configPath: path.join(home, 'absent'), homeDir: home, localUser: 'alice', env: {} });
  assert.equal(r.hostname, 'web1');
  assert.equal(r.port, 22);
  assert.equal(r.user, 'alice');
  assert.deepEqual(r.identityFiles.map((f) => path.basename(f.path)), ['id_ed25519', 'id_ecdsa', 'id_rsa']);
  assert.ok(r.identityFiles.every((f) => f.isDefault && !f.explicit));
  assert.deepEqual(r.userKnownHostsFiles, [path.join(home, '.ssh/known_hosts'), path.join(home, '.ssh/known_hosts2')]);
  assert.deepEqual(r.globalKnownHostsFiles, ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']);
  assert.equal(r.strictHostKeyChecking, 'ask');
  assert.equal(r.identityAgent, undefined);
  assert.equal(r.jump, undefined);
  assert.equal(r.configFile, undefined);
});

test('alias with HostName %h, first value wins, Host * fills the rest', () => {
  const opts = withConfig(`
Host web*
  HostName %h.internal.example
  Port 2201
Host web1
  Port 9999
  User deploy
Host *
  User nobody
  ConnectTimeout 7
  ServerAliveInterval 10
  ServerAliveCountMax 4
  HostKeyAlias Fleet-Key
  StrictHostKeyChecking accept-new
  HashKnownHosts yes
`);
  const r = resolveHost({ host: 'web1' }, opts);
  assert.equal(r.alias, 'web1');
  assert.equal(r.hostname, 'web1.internal.example');
  assert.equal(r.port, 2201);
  assert.equal(r.user, 'deploy');
  assert.equal(r.connectTimeoutMs, 7000);
  assert.equal(r.serverAliveIntervalMs, 10000);
  assert.equal(r.serverAliveCountMax, 4);
  assert.equal(r.hostKeyAlias, 'fleet-key');
  assert.equal(r.strictHostKeyChecking, 'accept-new');
  assert.equal(r.hashKnownHosts, true);
  assert.equal(r.configFile, opts.configPath);
  assert.equal(resolveHost({ host: 'db1' }, opts).user, 'nobody');
});

test('user and port precedence: spec > option > config > local', () => {
  const opts = withConfig('Host web1\n  User cfguser\n  Port 2222\n');
  assert.equal(resolveHost({ host: 'web1', user: 'spec' }, { ...opts, defaultUser: 'opt' }).user, 'spec');
  assert.equal(resolveHost({ host: 'web1' }, { ...opts, defaultUser: 'opt' }).user, 'opt');
  assert.equal(resolveHost({ host: 'web1' }, opts).user, 'cfguser');
  assert.equal(resolveHost({ host: 'web2' }, opts).user, 'alice');
  assert.equal(resolveHost({ host: 'web1', port: 2022 }, opts).port, 2022);
  assert.equal(resolveHost({ host: 'web1' }, opts).port, 2222);
});

test('identity files: -i first, config with tokens, defaults only when none given', () => {
  const opts = withConfig(`
Host web1
  HostName 10.1.2.3
  User deploy
  IdentityFile ~/.ssh/%r@%h_%u
  IdentityFile %d/keys/%n-%p
  IdentityFile "/abs/with space"
  IdentitiesOnly yes
`);
  const r = resolveHost({ host: 'web1' }, { ...opts, identityFiles: ['~/explicit', 'rel/key'] });
  assert.deepEqual(r.identityFiles.map((f) => [f.path, f.explicit]), [
    [path.join(home, 'explicit'), true],
    [path.join(home, 'rel/key'), true],
    [path.join(home, '.ssh/deploy@10.1.2.3_alice'), false],
    [path.join(home, 'keys/web1-22'), false],
    ['/abs/with space', false],
  ]);
  assert.equal(r.identitiesOnly, true);
  // -i alone suppresses the defaults, like ssh -i.
  const onlyExplicit = resolveHost({ host: 'other' }, { ...opts, identityFiles: ['/k'] });
  assert.deepEqual(onlyExplicit.identityFiles.map((f) => f.path), ['/k']);
});

test('known_hosts files: config list with ~, explicit ones replace them, none and globals', () => {
  const opts = withConfig(`
Host web1
  UserKnownHostsFile ~/.ssh/kh1 /etc/kh2 ~/.ssh/kh_%k
  GlobalKnownHostsFile /etc/g1
Host web2
  UserKnownHostsFile none
  GlobalKnownHostsFile none
`);
  const r = resolveHost({ host: 'web1' }, opts);
  assert.deepEqual(r.userKnownHostsFiles, [path.join(home, '.ssh/kh1'), '/etc/kh2', path.join(home, '.ssh/kh_web1')]);
  assert.deepEqual(r.globalKnownHostsFiles, ['/etc/g1']);
  const explicit = resolveHost({ host: 'web1' }, { ...opts, knownHostsFiles: ['~/ci_known_hosts'] });
  assert.deepEqual(explicit.userKnownHostsFiles, [path.join(home, 'ci_known_hosts')]);
  const none = resolveHost({ host: 'web2' }, opts);
  assert.deepEqual(none.userKnownHostsFiles, []);
  assert.deepEqual(none.globalKnownHostsFiles, []);
});

test('agent: option > IdentityAgent > SSH_AUTH_SOCK', () => {
  const opts = withConfig('Host a\n  IdentityAgent none\nHost b\n  IdentityAgent ~/agent.sock\nHost c\n  IdentityAgent $MY_SOCK\nHost d\n  IdentityAgent SSH_AUTH_SOCK\n', { env: { SSH_AUTH_SOCK: '/env.sock', MY_SOCK: '/my.sock' } });
  assert.equal(resolveHost({ host: 'a' }, opts).identityAgent, undefined);
  assert.equal(resolveHost({ host: 'b' }, opts).identityAgent, path.join(home, 'agent.sock'));
  assert.equal(resolveHost({ host: 'c' }, opts).identityAgent, '/my.sock');
  assert.equal(resolveHost({ host: 'd' }, opts).identityAgent, '/env.sock');
  assert.equal(resolveHost({ host: 'e' }, opts).identityAgent, '/env.sock');
  assert.equal(resolveHost({ host: 'b' }, { ...opts, agentSocket: '/opt.sock' }).identityAgent, '/opt.sock');
  assert.equal(resolveHost({ host: 'e' }, { ...opts, agentSocket: '' }).identityAgent, undefined);
});

test('ProxyJump: comma list, each hop resolved through the config, first hop keeps its own ProxyJump', () => {
  const opts = withConfig(`
Host target
  HostName 10.0.0.9
  ProxyJump ops@j1:2200,j2
Host j1
  HostName j1.example
  ProxyJump j0
Host j2
  HostName j2.example
  User jumper
  ProxyJump ignored-because-overridden
Host j0
  Port 2000
`, { defaultUser: 'deploy', identityFiles: ['/explicit'] });
  const r = resolveHost({ host: 'target' }, opts);
  assert.equal(r.user, 'deploy');
  const j2 = r.jump!;
  assert.equal(j2.alias, 'j2');
  assert.equal(j2.hostname, 'j2.example');
  assert.equal(j2.user, 'jumper', '--user is for the targets, not the jump hosts (like ssh -l)');
  assert.equal(j2.identityFiles[0]!.path, '/explicit', '-i applies to jump hosts too');
  const j1 = j2.jump!;
  assert.equal(j1.hostname, 'j1.example');
  assert.equal(j1.user, 'ops');
  assert.equal(j1.port, 2200);
  const j0 = j1.jump!;
  assert.equal(j0.alias, 'j0');
  assert.equal(j0.port, 2000);
  assert.equal(j0.user, 'alice');
  assert.equal(j0.jump, undefined);
});

test('ProxyJump none, self-reference under Host *, loops and ProxyCommand order', () => {
  const opts = withConfig(`
Host direct
  ProxyJump none
Host loop-a
  ProxyJump loop-b
Host loop-b
  ProxyJump loop-a
Host viacmd
  ProxyCommand nc %h %p
Host *
  ProxyJump bastion
`);
  assert.equal(resolveHost({ host: 'direct' }, opts).jump, undefined);
  assert.equal(resolveHost({ host: 'web' }, opts).jump?.alias, 'bastion');
  assert.equal(resolveHost({ host: 'bastion' }, opts).jump, undefined, 'bastion does not jump through itself');
  assert.throws(() => resolveHost({ host: 'loop-a' }, opts), /ProxyJump chain deeper/);
  const cmd = resolveHost({ host: 'viacmd' }, opts);
  assert.equal(cmd.proxyCommand, 'nc viacmd 22');
  assert.equal(cmd.jump, undefined, 'ProxyCommand came first, so it wins');
});

test('Include files relative to ~/.ssh, with globs', () => {
  mkdirSync(path.join(home, '.ssh', 'conf.d'), { recursive: true });
  writeFileSync(path.join(home, '.ssh', 'conf.d', '10-web.conf'), 'Host inc-web\n  HostName 192.0.2.10\n  User incuser\n');
  writeFileSync(path.join(home, '.ssh', 'conf.d', '20-db.conf'), 'Host inc-db\n  Port 5555\n');
  const opts = withConfig('Include conf.d/*.conf\nHost *\n  User fallback\n');
  const web = resolveHost({ host: 'inc-web' }, opts);
  assert.equal(web.hostname, '192.0.2.10');
  assert.equal(web.user, 'incuser');
  assert.equal(resolveHost({ host: 'inc-db' }, opts).port, 5555);
  assert.equal(resolveHost({ host: 'inc-db' }, opts).user, 'fallback');
});

test('mistakes are ResolveErrors that say what is wrong', () => {
  assert.throws(() => resolveHost({ host: 'x' }, withConfig('Host x\n  Port abc\n')), (e: unknown) => e instanceof ResolveError && /invalid port "abc"/.test(e.message));
  assert.throws(() => resolveHost({ host: 'x' }, withConfig('Host x\n  IdentityFile ~/%Q\n')), /unknown token %Q in IdentityFile/);
  assert.throws(() => resolveHost({ host: 'x' }, withConfig('Host x\n  IdentityFile ${NOPE}/k\n')), /NOPE/);
  assert.throws(() => resolveHost({ host: 'x y' }, withConfig('')), /invalid host name/);
  assert.throws(() => resolveHost({ host: 'x' }, withConfig('Host x\n  StrictHostKeyChecking maybe\n')), /StrictHostKeyChecking/);
});

test('parseUserHostPort and parseProxyJump', () => {
  assert.deepEqual(parseUserHostPort('host'), { host: 'host' });
  assert.deepEqual(parseUserHostPort('u@host:2222'), { host: 'host', user: 'u', port: 2222 });
  assert.deepEqual(parseUserHostPort('ssh://u@host:2222'), { host: 'host', user: 'u', port: 2222 });
  assert.deepEqual(parseUserHostPort('u@[2001:db8::1]:2222'), { host: '2001:db8::1', user: 'u', port: 2222 });
  assert.deepEqual(parseUserHostPort('2001:db8::1'), { host: '2001:db8::1' });
  assert.deepEqual(parseUserHostPort('a@b@host'), { host: 'host', user: 'a@b' });
  assert.deepEqual(parseProxyJump('none'), []);
  assert.deepEqual(parseProxyJump('a, u@b:1'), [{ host: 'a' }, { host: 'b', user: 'u', port: 1 }]);
  assert.throws(() => parseUserHostPort('host:99999'), /invalid port/);
  assert.throws(() => parseUserHostPort('@host'), /empty user/);
});

test('agrees with `ssh -G` on hostname, port, user and ProxyJump', () => {
  const text = `
Host web*
  HostName %h.internal.example
  Port 2201
Host web1
  User deploy
Host db
  HostName 10.9.8.7
  ProxyJump ops@j1:2200,j2
Host *
  Port 2999
`;
  const opts = withConfig(text, { localUser: os.userInfo().username });
  for (const host of ['web1', 'web2', 'db', 'other', 'WEB1']) {
    const g = execFileSync('ssh', ['-G', '-F', opts.configPath!, host], { env: { ...process.env, HOME: home }, encoding: 'utf8' });
    const field = (k: string): string | undefined => new RegExp(`^${k} (.*)$`, 'm').exec(g)?.[1];
    const r = resolveHost({ host }, opts);
    assert.equal(r.hostname.toLowerCase(), field('hostname'), `${host} hostname`);
    assert.equal(String(r.port), field('port'), `${host} port`);
    assert.equal(r.user, field('user'), `${host} user`);
    const jumps: string[] = [];
    for (let j = r.jump; j; j = j.jump) jumps.unshift(`${j.user}@${j.alias}:${j.port}`);
    if (field('proxyjump')) assert.equal(jumps.length, field('proxyjump')!.split(',').length, `${host} jumps`);
    else assert.equal(jumps.length, 0);
  }
});

test('the system config is read after the user one (the user wins), and not at all with an explicit config', () => {
  const system = path.join(home, 'system_config');
  writeFileSync(system, 'Port 2222\nUser sysuser\nHost special\n  HostName special.example\n');
  const userFile = path.join(home, '.ssh', 'config');
  writeFileSync(userFile, 'Host web1\n  User alice-web\n');
  const base = { homeDir: home, localUser: 'alice', env: {}, systemConfigPath: system };
  const web = resolveHost({ host: 'web1' }, base);
  assert.equal(web.user, 'alice-web', 'the user file first');
  assert.equal(web.port, 2222, 'the system file fills what the user left');
  assert.equal(resolveHost({ host: 'special' }, base).hostname, 'special.example');
  // `ssh -F FILE` reads no system file: neither does --ssh-config.
  const explicit = resolveHost({ host: 'web1' }, { ...withConfig('Host web1\n  User x\n'), systemConfigPath: undefined });
  assert.equal(explicit.port, 22);
  rmSync(userFile);
});

test('an Include of Host sections inside a Host block sends only the hosts of that block to OpenSSH, and leaks to no other host', () => {
  const inc = path.join(home, '.ssh', 'inner.conf');
  writeFileSync(inc, 'Port 2200\nHost *\n  User leaked\n');
  const opts = withConfig(`Host inner*\n  Include ${inc}\n\nHost *\n  User everyone\n  SendEnv LANG\n`);
  const inner = resolveHost({ host: 'inner1' }, opts);
  assert.equal(inner.port, 2200, 'the leading directives of the file apply to the block');
  assert.ok(inner.openSshOnly.includes('an Include of Host sections inside a Host block'), inner.openSshOnly.join(', '));
  const other = resolveHost({ host: 'other' }, opts);
  assert.equal(other.user, 'everyone', 'the included Host * section does not apply outside the block');
  assert.deepEqual(other.openSshOnly, []);
  assert.deepEqual(other.ignored, ['sendenv'], 'settings the built-in client does not use are named');
  const certs = resolveHost({ host: 'c' }, withConfig('Host c\n  CertificateFile ~/.ssh/id-cert.pub\n  GSSAPIAuthentication yes\n'));
  assert.deepEqual(certs.openSshOnly, ['certificatefile'])
  assert.deepEqual(certs.ignored, ['gssapiauthentication'])
});
