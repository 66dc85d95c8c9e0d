// known_hosts parsing and host key checks, cross-checked against OpenSSH's own ssh-keygen.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs, { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import ssh2 from 'ssh2';
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  formatKnownHostsLine,
  hashHostName,
  keyTypeOf,
  parseKnownHosts,
} from '../src/core/ssh/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'herd-kh-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function newKey(type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519'): { line: string; blob: Buffer } {
  const opts = type === 'rsa' ? { bits: 2048 } : type === 'ecdsa' ? { bits: 256 } : undefined;
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync(type, opts as never);
    const [t, b64] = pair.public.split(' ') as [string, string];
    const blob = Buffer.from(b64, 'base64');
    // ssh2 drops a leading zero byte of an ed25519 public key (1 key in 256): a 31-byte key that
    // ssh-keygen rightly refuses ("not a public key file"). Such a key is drawn again.
    if (type === 'ed25519' && blob.length !== 4 + 11 + 4 + 32) continue;
    return { line: `${t} ${b64}`, blob };
  }
}

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

const A = newKey();
const B = newKey();
const E = newKey('ecdsa');

test('plain names, comma lists, comments and blank lines', () => {
  const f = file('plain', `# comment\n\nother.example ${B.line}\nweb1,10.0.0.1 ${A.line} root@x\n`);
  assert.deepEqual(checkHostKey([f], ['web1'], 22, A.blob), { status: 'match', file: f, line: 4, lookupName: 'web1' });
  assert.equal(checkHostKey([f], ['10.0.0.1'], 22, A.blob).status, 'match');
  assert.equal(checkHostKey([f], ['WEB1'], 22, A.blob).status, 'match', 'host names are case-insensitive');
  assert.equal(checkHostKey([f], ['web2'], 22, A.blob).status, 'unknown');
});

test('wildcards and negation', () => {
  const f = file('wild', `*.prod.example,!db?.prod.example ${A.line}\n`);
  assert.equal(checkHostKey([f], ['web.prod.example'], 22, A.blob).status, 'match');
  assert.equal(checkHostKey([f], ['db1.prod.example'], 22, A.blob).status, 'unknown', 'negated pattern rejects the line');
  assert.equal(checkHostKey([f], ['db12.prod.example'], 22, A.blob).status, 'match', '? is exactly one character');
  assert.equal(checkHostKey([f], ['prod.example'], 22, A.blob).status, 'unknown');
});

test('non-22 ports use [host]:port only, like OpenSSH', () => {
  const f = file('port', `[web1]:2222 ${A.line}\nweb2 ${A.line}\n`);
  assert.equal(checkHostKey([f], ['web1'], 2222, A.blob).status, 'match');
  assert.equal(checkHostKey([f], ['web1'], 22, A.blob).status, 'unknown');
  assert.equal(checkHostKey([f], ['web2'], 2222, A.blob).status, 'unknown', 'a port-22 entry does not vouch for 2222');
  assert.equal(checkHostKey([f], ['web1'], 2222, A.blob).lookupName, '[web1]:2222');
});

test('hashed entries: ours are found by ssh-keygen -F, and ssh-keygen -H output is found by us', () => {
  const ours = file('hashed-ours', `${formatKnownHostsLine('web1.example', 2222, A.blob, { hash: true })}\n`);
  assert.match(readFileSync(ours, 'utf8'), /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /);
  const found = execFileSync('ssh-keygen', ['-F', '[web1.example]:2222', '-f', ours]).toString();
  assert.match(found, /found: line 1/);
  assert.equal(checkHostKey([ours], ['web1.example'], 2222, A.blob).status, 'match');

  const theirs = file('hashed-theirs', `web9.example ${A.line}\n[web9.example]:2200 ${E.line}\n`);
  execFileSync('ssh-keygen', ['-H', '-f', theirs], { stdio: 'ignore' });
  assert.match(readFileSync(theirs, 'utf8'), /^\|1\|/);
  assert.equal(checkHostKey([theirs], ['web9.example'], 22, A.blob).status, 'match');
  assert.equal(checkHostKey([theirs], ['web9.example'], 2200, E.blob).status, 'match');
  assert.equal(checkHostKey([theirs], ['web8.example'], 22, A.blob).status, 'unknown');
  // A fixed salt gives OpenSSH's value: HMAC-SHA1(salt, name).
  const salt = Buffer.alloc(20, 7);
  assert.equal(hashHostName('Web1', salt), hashHostName('web1', salt));
});

test('changed: same type, different key; other type only is changed too', () => {
  const f = file('changed', `web1 ${B.line}\n`);
  assert.deepEqual(checkHostKey([f], ['web1'], 22, A.blob), { status: 'changed', file: f, line: 1, knownKeyType: 'ssh-ed25519', lookupName: 'web1' });
  const g = file('othertype', `web1 ${E.line}\n`);
  const r = checkHostKey([g], ['web1'], 22, A.blob);
  assert.equal(r.status, 'changed');
  assert.equal(r.knownKeyType, 'ecdsa-sha2-nistp256');
  // A match anywhere wins over a stale line elsewhere.
  const h = file('stale', `web1 ${B.line}\n`);
  const i = file('fresh', `web1 ${A.line}\n`);
  assert.equal(checkHostKey([h, i], ['web1'], 22, A.blob).status, 'match');
});

test('@revoked rejects even when another line matches; @cert-authority is ignored', () => {
  const f = file('revoked', `web1 ${A.line}\n@revoked * ${A.line}\n@cert-authority *.example ${B.line}\n`);
  assert.deepEqual(checkHostKey([f], ['web1'], 22, A.blob), { status: 'revoked', file: f, line: 2, lookupName: 'web1' });
  assert.equal(checkHostKey([f], ['x.example'], 22, B.blob).status, 'unknown');
  assert.equal(parseKnownHosts(readFileSync(f, 'utf8')).length, 3);
});

test('missing files count as empty; garbage lines are skipped', () => {
  const f = file('garbage', `web1\nweb1 ssh-ed25519\nweb1 ssh-ed25519 !!!notbase64\nweb1 1024 35 12345\n@bogus web1 ${B.line}\nweb1 ${A.line}\n`);
  assert.equal(checkHostKey([path.join(dir, 'nope'), f], ['web1'], 22, A.blob).line, 6);
  assert.equal(checkHostKey([f], ['web1'], 22, B.blob).status, 'changed', '@bogus marker line is ignored, the A line remains');
});

test('fingerprint equals ssh-keygen -l; keyTypeOf reads the blob', () => {
  const pub = file('a.pub', `${A.line} c\n`);
  const out = execFileSync('ssh-keygen', ['-l', '-f', pub]).toString();
  assert.ok(out.includes(fingerprint(A.blob)), `${out} vs ${fingerprint(A.blob)}`);
  assert.equal(keyTypeOf(A.blob), 'ssh-ed25519');
  assert.equal(keyTypeOf(Buffer.alloc(2)), '');
});

test('appendKnownHost creates the directory and keeps lines separate', () => {
  const f = path.join(dir, 'new', 'sub', 'known_hosts');
  appendKnownHost(f, formatKnownHostsLine('web1', 22, A.blob));
  writeFileSync(f, `${readFileSync(f, 'utf8')}web3 ${B.line}`); // no trailing newline
  appendKnownHost(f, formatKnownHostsLine('web2', 22, A.blob));
  const lines = readFileSync(f, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 3);
  assert.equal(checkHostKey([f], ['web2'], 22, A.blob).line, 3);
});

test('each known_hosts file is read once and each hashed entry matched once per host name, until the file changes', (t) => {
  const fleet = Array.from({ length: 200 }, (_, i) => `web${i}.example`);
  const f = file('fleet', fleet.map((h, i) => `${hashHostName(h)} ${(i === 7 ? A : B).line}`).join('\n') + '\n');
  // Counted where known-hosts.ts calls them: the module's named imports follow the patched builtins.
  const reads = t.mock.method(fs, 'readFileSync');
  const hmacs = t.mock.method(crypto, 'createHmac');
  syncBuiltinESMExports();
  try {
    for (let i = 0; i < 3; i++) assert.equal(checkHostKey([f], ['web7.example'], 22, A.blob).status, 'match');
    assert.equal(checkHostKey([f], ['web8.example'], 22, A.blob).status, 'changed');
    assert.equal(checkHostKey([f], ['web8.example'], 22, B.blob).status, 'match');
    assert.equal(reads.mock.calls.filter((c) => c.arguments[0] === f).length, 1, 'read once');
    assert.equal(hmacs.mock.callCount(), 2 * fleet.length, 'every entry matched once per name looked up');
  } finally {
    t.mock.restoreAll();
    syncBuiltinESMExports();
  }
  appendKnownHost(f, formatKnownHostsLine('web7.example', 22, E.blob, { hash: true }));
  assert.equal(checkHostKey([f], ['web7.example'], 22, E.blob).status, 'match', 'a line added to the file counts at once');
  writeFileSync(f, `web7.example ${B.line}\n`);
  assert.equal(checkHostKey([f], ['web7.example'], 22, A.blob).status, 'changed', 'a rewritten file counts at once');
  rmSync(f);
  assert.equal(checkHostKey([f], ['web7.example'], 22, A.blob).status, 'unknown', 'a removed file counts as empty');
});
