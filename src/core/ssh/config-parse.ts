// Reads ssh_config text as OpenSSH does: a file and its Includes into one config, the lines that apply to a
// host, and the values its directives take (ports, seconds, yes/no, %tokens, ${VAR}, ProxyJump lists).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import SSHConfig, { type Line } from 'ssh-config';
import { portNumber, splitAddress, type HostAddress } from '../hosts.js';

/** A mistake in the ssh config or the host spec; connect.ts turns it into SshError 'resolve'. */
export class ResolveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResolveError';
  }
}

/** OpenSSH StrictHostKeyChecking value from the config ('ask' behaves like 'yes' in BatchMode). */
export type StrictHostKeyChecking = 'yes' | 'ask' | 'accept-new' | 'no';

const MAX_INCLUDE_DEPTH = 16;

/** Parse a ProxyJump value: comma list of `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export function parseProxyJump(value: string): HostAddress[] {
  const v = value.trim();
  if (v.toLowerCase() === 'none' || v === '') return [];
  return v.split(',').map((part) => parseUserHostPort(part.trim(), 'ProxyJump'));
}

/** Parse `[user@]host[:port]`, `[user@][v6addr]:port` or `ssh://[user@]host[:port]` (read as a hosts line is). */
export function parseUserHostPort(text: string, what = 'host'): HostAddress {
  let s = text;
  if (s.toLowerCase().startsWith('ssh://')) s = s.slice(6).replace(/\/$/, '');
  if (!s) throw new ResolveError(`empty ${what} entry`);
  const { user, host, port: portText, fault, after } = splitAddress(s);
  if (user === '') throw new ResolveError(`empty user in ${what} "${text}"`);
  if (fault === 'unclosed') throw new ResolveError(`unbalanced [ in ${what} "${text}"`);
  if (fault === 'after-bracket') throw new ResolveError(`unexpected "${after}" in ${what} "${text}"`);
  const port = parsePort(portText, what);
  if (!host) throw new ResolveError(`empty host in ${what} "${text}"`);
  return { host, ...(user !== undefined ? { user } : {}), ...(port !== undefined ? { port } : {}) };
}

/** The settings `config` gives `host`, first value obtained winning, as ssh -G would list them (keys lower-cased). */
export function computeFor(config: SSHConfig, host: string): Record<string, string | string[]> {
  // matchExec false: `Match exec` would run shell commands from the config for every host.
  return config.compute(host, { ignoreCase: true, matchExec: false });
}

/**
 * Reads an ssh config file with its Includes inlined (`includeDir` is where relative ones are); a missing
 * file is an empty config (`found` false), an unreadable or unparsable one a ResolveError.
 */
export function loadConfig(file: string, includeDir: string, home: string, env: NodeJS.ProcessEnv, gated: Set<Line>): { config: SSHConfig; found: boolean } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { config: SSHConfig.parse(''), found: false };
    throw new ResolveError(`cannot read ssh config ${file}: ${(err as Error).message}`);
  }
  let config: SSHConfig;
  try {
    config = SSHConfig.parse(text);
  } catch (err) {
    throw new ResolveError(`cannot parse ssh config ${file}: ${(err as Error).message}`);
  }
  expandIncludes(config, includeDir, home, env, 0, gated);
  return { config, found: true };
}

/**
 * Inline `Include` files (ssh-config's compute ignores them). Top-level includes are spliced in place;
 * an Include inside a Host/Match block contributes its leading directives to that block. Host or Match
 * sections it brings apply only where the outer block matched, which ssh-config can't express: they
 * are left out and the block goes into `gated`, so hosts it matches are sent to OpenSSH.
 */
function expandIncludes(config: Line[], baseDir: string, home: string, env: NodeJS.ProcessEnv, depth: number, gated: Set<Line>): void {
  if (depth > MAX_INCLUDE_DEPTH) throw new ResolveError('ssh config Include nested too deeply (a loop?)');
  for (let i = 0; i < config.length; i++) {
    const line = config[i]!;
    if (line.type !== SSHConfig.DIRECTIVE) continue;
    if ('config' in line) {
      const inner = line.config as unknown as Line[];
      const before = inner.length;
      expandIncludes(inner, baseDir, home, env, depth, gated);
      const firstSection = inner.findIndex((l) => l.type === SSHConfig.DIRECTIVE && 'config' in l);
      if (firstSection >= 0 && inner.length !== before) {
        inner.splice(firstSection);
        gated.add(line);
      }
      continue;
    }
    if (line.param.toLowerCase() !== 'include') continue;
    const values = Array.isArray(line.value) ? line.value.map((v) => v.val) : line.value.split(/\s+/);
    const included: Line[] = [];
    for (const raw of values.filter(Boolean)) {
      let pattern = expandEnv(expandTilde(raw, home), env, 'Include');
      if (!path.isAbsolute(pattern)) pattern = path.join(baseDir, pattern);
      for (const file of globFiles(pattern)) {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch {
          continue; // OpenSSH ignores unreadable include matches
        }
        const sub = SSHConfig.parse(text);
        expandIncludes(sub, baseDir, home, env, depth + 1, gated);
        included.push(...sub);
      }
    }
    config.splice(i, 1, ...included);
    i += included.length - 1;
  }
}

/** Minimal glob for Include: `*` and `?` within path segments, results sorted like glob(3). */
function globFiles(pattern: string): string[] {
  if (!/[*?[]/.test(pattern)) return [pattern];
  const parts = pattern.split('/').filter((p, i) => p !== '' || i === 0);
  let current = [parts[0] === '' ? '/' : parts[0]!];
  for (const part of parts.slice(1)) {
    const next: string[] = [];
    for (const dir of current) {
      if (!/[*?[]/.test(part)) {
        next.push(path.join(dir, part));
        continue;
      }
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      const re = globToRegExp(part);
      for (const n of names.sort()) if (!n.startsWith('.') && re.test(n)) next.push(path.join(dir, n));
    }
    current = next;
  }
  return current;
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (const ch of pattern) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[\\^$.|+(){}[\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** OpenSSH percent_expand: unknown tokens are an error, `%%` is a literal percent. */
export function percentExpand(value: string, tokens: Record<string, string>, directive: string): string {
  return value.replace(/%(.)?/g, (_m, t: string | undefined) => {
    if (t === '%') return '%';
    if (t !== undefined && Object.hasOwn(tokens, t)) return tokens[t]!;
    throw new ResolveError(`unknown token %${t ?? ''} in ${directive} "${value}"`);
  });
}

export function expandEnv(value: string, env: NodeJS.ProcessEnv, directive: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const v = env[name];
    if (v === undefined) throw new ResolveError(`environment variable ${name} in ${directive} "${value}" is not set`);
    return v;
  });
}

export function expandTilde(value: string, home: string): string {
  if (value === '~') return home;
  if (value.startsWith('~/')) return path.join(home, value.slice(2));
  return value;
}

export function parsePort(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const port = portNumber(value.trim());
  if (port === undefined) throw new ResolveError(`invalid port "${value}" in ${what}`);
  return port;
}

export function parseSeconds(value: string | undefined, directive: string): number | undefined {
  if (value === undefined || value.toLowerCase() === 'none') return undefined;
  if (!/^\d+$/.test(value.trim())) throw new ResolveError(`invalid ${directive} "${value}" in ssh config (whole seconds)`);
  return Number(value.trim());
}

export function yesNo(value: string | undefined, directive: string): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  throw new ResolveError(`invalid ${directive} "${value}" in ssh config (yes or no)`);
}

export function parseStrict(value: string | undefined): StrictHostKeyChecking {
  if (value === undefined) return 'ask';
  switch (value.toLowerCase()) {
    case 'yes':
    case 'true':
      return 'yes';
    case 'ask':
      return 'ask';
    case 'accept-new':
      return 'accept-new';
    case 'no':
    case 'off':
    case 'false':
      return 'no';
    default:
      throw new ResolveError(`invalid StrictHostKeyChecking "${value}" in ssh config`);
  }
}
