// known_hosts files as OpenSSH reads them: plain/wildcard/negated/hashed names, [host]:port, @revoked.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export type HostKeyStatus = 'match' | 'unknown' | 'changed' | 'revoked';

export interface HostKeyCheck {
  status: HostKeyStatus;
  /** known_hosts file and 1-based line of the entry that decided the status (not set for 'unknown'). */
  file?: string;
  line?: number;
  /** For 'changed': the key type on record (differs from the offered type if the server switched types). */
  knownKeyType?: string;
  /** The name looked up, `host` or `[host]:port`, as `ssh-keygen -R` / `-F` want it. */
  lookupName: string;
}

export interface KnownHostsEntry {
  marker?: 'revoked' | 'cert-authority';
  /** The host field as written: a comma list of patterns or one `|1|salt|hash`. */
  hosts: string;
  keyType: string;
  key: Buffer;
  line: number;
}

/** The name OpenSSH looks up for `host` on `port`: `host` for 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** Parse known_hosts text; malformed lines, unknown markers and SSH1 keys are skipped like OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const trimmed = lines[i]!.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const fields = trimmed.split(/\s+/);
    let marker: KnownHostsEntry['marker'];
    if (fields[0]!.startsWith('@')) {
      const m = fields.shift()!;
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else continue;
    }
    if (fields.length < 3) continue;
    const [hosts, keyType, b64] = fields as [string, string, string];
    if (/^\d+$/.test(keyType)) continue; // SSH1 RSA key (bits exponent modulus)
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) continue;
    const key = Buffer.from(b64, 'base64');
    if (keyTypeOf(key) !== keyType) continue; // type field and blob disagree: not a usable line
    entries.push({ ...(marker ? { marker } : {}), hosts, keyType, key, line: i + 1 });
  }
  return entries;
}

/** Does the host field of a known_hosts line match `name` (already in `[host]:port` form if needed)? */
export function hostFieldMatches(field: string, name: string): boolean {
  const lname = name.toLowerCase();
  if (field.startsWith('|1|')) {
    const parts = field.split('|');
    if (parts.length !== 4) return false;
    const salt = Buffer.from(parts[2]!, 'base64');
    const want = Buffer.from(parts[3]!, 'base64');
    const got = createHmac('sha1', salt).update(lname).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  let matched = false;
  for (const raw of field.split(',')) {
    if (raw === '') continue;
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (wildcardMatch(pattern, lname)) {
      if (negated) return false; // a negated match rejects the whole line
      matched = true;
    }
  }
  return matched;
}

/**
 * Check `keyBlob` (the server's public key in SSH wire format) for `hostNames` on `port` in `files`,
 * in order. Missing or unreadable files count as empty. Precedence: revoked > match > changed > unknown.
 * A host on record only with keys of other types is 'changed' (OpenSSH would call it new; we refuse it
 * even under accept-new because it may be an attacker offering a type we have no record of).
 */
export function checkHostKey(files: string[], hostNames: string[], port: number, keyBlob: Buffer): HostKeyCheck {
  const names = uniqueNames(hostNames, port);
  const lookupName = names[0] ?? '';
  const offeredType = keyTypeOf(keyBlob);
  let match: HostKeyCheck | undefined;
  let sameType: HostKeyCheck | undefined;
  let otherType: HostKeyCheck | undefined;
  for (const file of files) {
    for (const e of entriesFor(file, names)) {
      if (e.marker === 'cert-authority') continue; // plain host keys only; CAs never vouch for them
      const equal = e.key.equals(keyBlob);
      if (e.marker === 'revoked') {
        if (equal) return { status: 'revoked', file, line: e.line, lookupName };
        continue;
      }
      if (equal) match ??= { status: 'match', file, line: e.line, lookupName };
      else if (e.keyType === offeredType) sameType ??= { status: 'changed', file, line: e.line, knownKeyType: e.keyType, lookupName };
      else otherType ??= { status: 'changed', file, line: e.line, knownKeyType: e.keyType, lookupName };
    }
  }
  return match ?? sameType ?? otherType ?? { status: 'unknown', lookupName };
}

/** Whether an `@cert-authority` line vouches for the host: it presents a host certificate. */
export function hasCertAuthority(files: string[], hostNames: string[], port: number): boolean {
  const names = uniqueNames(hostNames, port);
  return files.some((file) => entriesFor(file, names).some((e) => e.marker === 'cert-authority'));
}

/** Key types on record for the host (not revoked, not CA), in file order: used to prefer those algorithms. */
export function knownKeyTypes(files: string[], hostNames: string[], port: number): string[] {
  const names = uniqueNames(hostNames, port);
  const types: string[] = [];
  for (const file of files) {
    for (const e of entriesFor(file, names)) {
      if (!e.marker && !types.includes(e.keyType)) types.push(e.keyType);
    }
  }
  return types;
}

/** A known_hosts line for `host`/`port`; `hash` writes `|1|salt|hmac` like HashKnownHosts yes. */
export function formatKnownHostsLine(host: string, port: number, keyBlob: Buffer, opts: { hash?: boolean } = {}): string {
  const name = knownHostsName(host, port);
  const field = opts.hash ? hashHostName(name) : name;
  return `${field} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}`;
}

/** `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, as `ssh-keygen -H` writes it. */
export function hashHostName(name: string, salt: Buffer = randomBytes(20)): string {
  const mac = createHmac('sha1', salt).update(name.toLowerCase()).digest();
  return `|1|${salt.toString('base64')}|${mac.toString('base64')}`;
}

/** Append a line, creating the directory (0700) and file (0600) if needed; keeps lines separated. */
export function appendKnownHost(file: string, line: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const size = statSync(file).size;
    if (size > 0) {
      const text = readFileSync(file);
      if (text[text.length - 1] !== 0x0a) prefix = '\n';
    }
  } catch {
    // new file
  }
  appendFileSync(file, `${prefix}${line}\n`, { mode: 0o600 });
}

/** `SHA256:<base64 without padding>`, the fingerprint OpenSSH prints. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named at the start of an SSH wire-format public key blob ('' if malformed). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return '';
  const len = keyBlob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > keyBlob.length) return '';
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

function uniqueNames(hostNames: string[], port: number): string[] {
  const names: string[] = [];
  for (const h of hostNames) {
    if (!h) continue;
    const n = knownHostsName(h, port);
    if (!names.includes(n)) names.push(n);
  }
  return names;
}

/** A known_hosts file as last read: its entries, and those that match each name looked up so far. */
interface ReadFile {
  /** Device, inode, size, mtime and ctime: any change to the file changes it. */
  version: string;
  entries: KnownHostsEntry[];
  byName: Map<string, KnownHostsEntry[]>;
}

/**
 * Files read in this process. A run checks hundreds of hosts against the same files, and each check of a
 * hashed entry costs an HMAC: each file is read and parsed once per version, each name matched once.
 */
const readFiles = new Map<string, ReadFile>();

function readFileOnce(file: string): ReadFile | undefined {
  let version: string;
  try {
    const st = statSync(file);
    version = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch {
    readFiles.delete(file);
    return undefined;
  }
  const known = readFiles.get(file);
  if (known?.version === version) return known;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    readFiles.delete(file);
    return undefined;
  }
  const read: ReadFile = { version, entries: parseKnownHosts(text), byName: new Map() };
  readFiles.set(file, read);
  return read;
}

/** The entries of `file` whose host field matches any of `names`, in file order; a missing or unreadable file has none. */
function entriesFor(file: string, names: string[]): KnownHostsEntry[] {
  const read = readFileOnce(file);
  if (!read) return [];
  const lists = names.map((name) => {
    let list = read.byName.get(name);
    if (!list) {
      list = read.entries.filter((e) => hostFieldMatches(e.hosts, name));
      read.byName.set(name, list);
    }
    return list;
  });
  if (lists.length === 1) return lists[0]!;
  return [...new Set(lists.flat())].sort((a, b) => a.line - b.line);
}

/** OpenSSH match_pattern: `*` any run, `?` exactly one character. */
function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
