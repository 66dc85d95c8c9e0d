// Authentication like `ssh -o BatchMode=yes`: the keys the user named first, then ssh-agent, then the default files.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { AuthHandlerMiddleware, IdentityCallback, ParsedKey, SignCallback, SigningRequestOptions } from 'ssh2';
import type { IdentityFile, ResolvedHost } from './config.js';
import { fail, tildePath, type SshError } from './errors.js';
import { fingerprint, keyTypeOf } from './known-hosts.js';
import { fixWords, type FixWords } from '../front-end.js';

const { OpenSSHAgent, utils } = ssh2;

type KeyLoad =
  | { ok: true; key: ParsedKey }
  | { ok: false; problem: 'missing' | 'unreadable' | 'encrypted' | 'bad-passphrase' | 'invalid'; detail: string };

const keyCache = new Map<string, KeyLoad>();

/** Parse an identity file once per (path, mtime, passphrase): bcrypt KDFs cost tens of ms per try. */
function loadIdentity(path: string, passphrase: string | undefined): KeyLoad {
  let data: Buffer;
  let stamp: string;
  try {
    const st = statSync(path);
    stamp = `${st.mtimeMs}:${st.size}`;
    data = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, problem: code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : 'unreadable', detail: code ?? 'error' };
  }
  const passKey = passphrase === undefined ? '-' : createHash('sha256').update(passphrase).digest('hex');
  const cacheKey = `${path}\0${stamp}\0${passKey}`;
  const cached = keyCache.get(cacheKey);
  if (cached) return cached;
  const result = parseIdentity(data, passphrase);
  keyCache.set(cacheKey, result);
  return result;
}

function parseIdentity(data: Buffer, passphrase: string | undefined): KeyLoad {
  const first = (k: ParsedKey | ParsedKey[] | Error): ParsedKey | Error => (Array.isArray(k) ? (k[0] ?? new Error('no key in file')) : k);
  let key = first(utils.parseKey(data) as ParsedKey | ParsedKey[] | Error);
  if (key instanceof Error && /no passphrase given/i.test(key.message)) {
    if (passphrase === undefined || passphrase === '') return { ok: false, problem: 'encrypted', detail: 'encrypted, no passphrase given' };
    key = first(utils.parseKey(data, passphrase) as ParsedKey | ParsedKey[] | Error);
    if (key instanceof Error) return { ok: false, problem: 'bad-passphrase', detail: 'wrong passphrase' };
  }
  if (key instanceof Error) return { ok: false, problem: 'invalid', detail: key.message };
  if (!key.isPrivateKey()) return { ok: false, problem: 'invalid', detail: 'not a private key' };
  return { ok: true, key };
}

/** Public key blob of an identity, for IdentitiesOnly: `.pub` file, else the private file's public part. */
function identityPublicBlob(path: string, passphrase: string | undefined): Buffer | undefined {
  try {
    const pub = utils.parseKey(readFileSync(`${path}.pub`));
    if (!(pub instanceof Error)) return (Array.isArray(pub) ? pub[0] : pub)?.getPublicSSH();
  } catch {
    // no .pub: fall through
  }
  const loaded = loadIdentity(path, passphrase);
  if (loaded.ok) return loaded.key.getPublicSSH();
  try {
    return opensshPublicBlob(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The unencrypted public key inside an `openssh-key-v1` private key file (even an encrypted one). */
function opensshPublicBlob(text: string): Buffer | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]+?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return undefined;
  const buf = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (buf.subarray(0, magic.length).toString('latin1') !== magic) return undefined;
  let off = magic.length;
  const readString = (): Buffer => {
    const len = buf.readUInt32BE(off);
    const s = buf.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    return s;
  };
  readString(); // cipher
  readString(); // kdf
  readString(); // kdf options
  const n = buf.readUInt32BE(off);
  off += 4;
  return n >= 1 ? Buffer.from(readString()) : undefined;
}

/** The SSH wire-format public key of whatever the agent code hands around (parsed key, entry, blob). */
function publicBlobOf(k: unknown): Buffer | undefined {
  if (k && typeof (k as ParsedKey).getPublicSSH === 'function') return (k as ParsedKey).getPublicSSH();
  if (k && typeof k === 'object' && 'pubKey' in k) return publicBlobOf((k as { pubKey: unknown }).pubKey);
  if (Buffer.isBuffer(k) || typeof k === 'string') {
    const parsed = utils.parseKey(k);
    if (parsed instanceof Error) return undefined;
    return (Array.isArray(parsed) ? parsed[0] : parsed)?.getPublicSSH();
  }
  return undefined;
}

/** ssh-agent that may hide keys (IdentitiesOnly) and reports which key signed, by fingerprint only. */
class HerdAgent extends OpenSSHAgent {
  constructor(
    socketPath: string,
    private readonly allowed: Buffer[] | undefined,
    private readonly onKeys: (offered: number, total: number) => void,
    private readonly onSign: (blob: Buffer) => void,
  ) {
    super(socketPath);
  }

  override getIdentities(cb: IdentityCallback<ParsedKey>): void {
    super.getIdentities((err, keys) => {
      if (err || !keys) {
        cb(err ?? new Error('no identities'));
        return;
      }
      const allowed = this.allowed;
      const offered = allowed
        ? keys.filter((k) => {
          const blob = publicBlobOf(k);
          return blob !== undefined && allowed.some((b) => b.equals(blob));
        })
        : keys;
      this.onKeys(offered.length, keys.length);
      cb(null, offered);
    });
  }

  override sign(
    pubKey: ParsedKey | Buffer | string,
    data: Buffer,
    options?: SigningRequestOptions | SignCallback,
    cb?: SignCallback,
  ): boolean {
    const blob = publicBlobOf(pubKey);
    if (blob) this.onSign(blob);
    return typeof options === 'function'
      ? super.sign(pubKey, data, options)
      : super.sign(pubKey, data, options, cb);
  }
}

export interface Auth {
  handler: AuthHandlerMiddleware;
  started(): boolean;
  succeeded(): string;
  failure(serverMessage?: string): SshError;
}

/** The authHandler for one hop, plus what it tried, for the log and the error message. */
export function makeAuth(who: string, r: ResolvedHost, passphrase: string | undefined, log: (line: string) => void, words: FixWords = fixWords()): Auth {
  type Step = { kind: 'agent'; socket: string } | { kind: 'key'; file: IdentityFile };
  const steps: Step[] = [];
  const tried: string[] = [];
  const problems: Array<{ file: IdentityFile; problem: string; detail: string }> = [];
  let current = '';
  let agentSigned: Buffer | undefined;
  let serverMethods: string[] | undefined;
  let partial = false;
  let started = false;

  // As OpenSSH: keys named by -i or IdentityFile before the agent's others, so an agent holding many
  // keys does not use up the server's MaxAuthTries before the one the user meant.
  for (const file of r.identityFiles) if (!file.isDefault) steps.push({ kind: 'key', file });
  if (r.identityAgent) {
    let isSocket = false;
    try {
      isSocket = statSync(r.identityAgent).isSocket();
    } catch {
      // missing socket
    }
    if (isSocket) steps.push({ kind: 'agent', socket: r.identityAgent });
    else log(`auth: ssh-agent socket ${r.identityAgent} not found; skipping the agent`);
  }
  for (const file of r.identityFiles) if (file.isDefault) steps.push({ kind: 'key', file });

  const handler: AuthHandlerMiddleware = (methodsLeft, partialSuccess, next) => {
    started = true;
    if (methodsLeft) {
      serverMethods = methodsLeft;
      partial = partialSuccess === true;
      if (!methodsLeft.includes('publickey')) {
        next(false as never);
        return;
      }
    }
    for (let step = steps.shift(); step; step = steps.shift()) {
      if (step.kind === 'agent') {
        const allowed = r.identitiesOnly
          ? r.identityFiles.map((f) => identityPublicBlob(f.path, passphrase)).filter((b): b is Buffer => b !== undefined)
          : undefined;
        if (allowed && allowed.length === 0) {
          log('auth: IdentitiesOnly and no identity file has a public key: skipping the agent');
          continue;
        }
        current = 'ssh-agent';
        tried.push('ssh-agent');
        log(`auth: trying ssh-agent at ${step.socket}`);
        const agent = new HerdAgent(step.socket, allowed, (offered, total) => {
          tried[tried.indexOf('ssh-agent')] = `ssh-agent (${offered} key${offered === 1 ? '' : 's'})`;
          log(`auth: ssh-agent offers ${total} key(s)${allowed ? `, ${offered} allowed by IdentitiesOnly` : ''}`);
        }, (blob) => {
          agentSigned = blob;
        });
        next({ type: 'agent', username: r.user, agent });
        return;
      }
      const f = step.file;
      const loaded = loadIdentity(f.path, passphrase);
      if (!loaded.ok) {
        if (loaded.problem === 'missing' && !f.explicit) {
          if (!f.isDefault) log(`auth: identity file ${tildePath(f.path)} not found; skipped`);
          continue;
        }
        problems.push({ file: f, problem: loaded.problem, detail: loaded.detail });
        log(`auth: identity file ${tildePath(f.path)} skipped: ${loaded.detail}`);
        continue;
      }
      const blob = loaded.key.getPublicSSH();
      current = `${tildePath(f.path)} (${loaded.key.type} ${fingerprint(blob)})`;
      tried.push(tildePath(f.path));
      log(`auth: trying identity ${current}`);
      next({ type: 'publickey', username: r.user, key: loaded.key });
      return;
    }
    next(false as never);
  };

  return {
    handler,
    started: () => started,
    succeeded: () =>
      current === 'ssh-agent' && agentSigned ? `ssh-agent key ${keyTypeOf(agentSigned)} ${fingerprint(agentSigned)}` : current,
    failure(serverMessage?: string): SshError {
      const target = `${r.user}@${r.hostname}:${r.port}`;
      const explicitProblem = problems.find((p) => p.file.explicit);
      if (explicitProblem) {
        const p = tildePath(explicitProblem.file.path);
        switch (explicitProblem.problem) {
          case 'encrypted':
            return fail('identity', `${who}: identity file ${p} is encrypted and no passphrase was given`, `give its passphrase in ${words.passphrase}, or load it into ssh-agent`);
          case 'bad-passphrase':
            return fail('identity', `${who}: wrong passphrase for identity file ${p}`, `check ${words.passphrase}, or load the key into ssh-agent`);
          default:
            return fail('identity', `${who}: identity file ${p} is not a usable private key (${explicitProblem.detail})`, 'pass the private key file (not the .pub) in OpenSSH or PEM format');
        }
      }
      if (serverMethods && !serverMethods.includes('publickey')) {
        const what = partial ? `accepted the key but requires more (${serverMethods.join(', ')})` : `does not accept public keys (offers: ${serverMethods.join(', ') || 'nothing'})`;
        return fail('auth', `${who}: ${target} ${what}`, 'herd authenticates with keys only (BatchMode); enable PubkeyAuthentication for this user');
      }
      const skipped = problems.map((p) => `${tildePath(p.file.path)}: ${p.detail}`);
      if (tried.length === 0) {
        return fail('auth', `${who}: no key to offer to ${target} (no ssh-agent, no identity file found${skipped.length ? `; ${skipped.join('; ')}` : ''})`,
          words.giveKey);
      }
      const server = serverMessage ? ` (server said: ${serverMessage})` : '';
      const skippedText = skipped.length ? `; skipped: ${skipped.join('; ')}` : '';
      return fail('auth', `${who}: permission denied (publickey) for ${target}${server}; tried: ${tried.join(', ')}${skippedText}`,
        `add the public key to ~${r.user}/.ssh/authorized_keys on the host, or give the right key (${words.keyInput})${/too many/i.test(serverMessage ?? '') ? ' (too many keys offered: set IdentitiesOnly yes for this host)' : ''}`);
    },
  };
}
