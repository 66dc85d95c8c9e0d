// Resolves a host spec into the settings ssh would use for it (ssh_config, tokens, defaults, jump hosts).
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import SSHConfig, { type Line } from 'ssh-config';
import type { HostAddress } from '../hosts.js';
import {
  computeFor,
  expandEnv,
  expandTilde,
  loadConfig,
  parsePort,
  parseProxyJump,
  parseSeconds,
  parseStrict,
  percentExpand,
  ResolveError,
  yesNo,
  type StrictHostKeyChecking,
} from './config-parse.js';

export interface ResolveOptions {
  /** ssh config file; default `<home>/.ssh/config`; a missing file counts as empty. */
  configPath?: string;
  /**
   * The system-wide config read after the user's, as ssh does: default /etc/ssh/ssh_config, but none
   * when `configPath` is given (like `ssh -F`); null reads none.
   */
  systemConfigPath?: string | null;
  /** --user: beats config `User`, loses to `user@` in the spec; not applied to jump hosts (like `ssh -l`). */
  defaultUser?: string;
  /** -i files: tried first, applied to jump hosts too; suppress the default identities like `ssh -i`. */
  identityFiles?: string[];
  /** When non-empty these replace UserKnownHostsFile (GlobalKnownHostsFile is still read). */
  knownHostsFiles?: string[];
  /** Agent socket: beats IdentityAgent and SSH_AUTH_SOCK; '' means no agent; undefined means "like ssh". */
  agentSocket?: string;
  /** Home directory for `~`, `%d` and the default files; default os.homedir(). */
  homeDir?: string;
  /** Local user name (`%u`, default remote user); default os.userInfo().username. */
  localUser?: string;
  /** Environment for `${VAR}` and SSH_AUTH_SOCK; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface IdentityFile {
  /** Absolute path after `~`, token and `${VAR}` expansion. */
  path: string;
  /** From -i (a missing explicit file is an error; missing config/default files are skipped). */
  explicit: boolean;
  /** One of OpenSSH's default names, tried only when nothing else was configured. */
  isDefault: boolean;
}

export interface ResolvedHost {
  /** The host as written (OpenSSH %n); matched against Host patterns. */
  alias: string;
  /** Where to connect: HostName with %h expanded, else the alias. */
  hostname: string;
  port: number;
  user: string;
  /** Explicit (-i) first, then config IdentityFile, else the OpenSSH defaults. */
  identityFiles: IdentityFile[];
  identitiesOnly: boolean;
  /** Agent socket path to use, or undefined for no agent. */
  identityAgent?: string;
  /** Files searched for the host key, user files first; accept-new appends to the first one. */
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  strictHostKeyChecking: StrictHostKeyChecking;
  hashKnownHosts: boolean;
  /** Lower-cased HostKeyAlias: the name looked up in known_hosts instead of the hostname. */
  hostKeyAlias?: string;
  /** ConnectTimeout from the config, in ms. */
  connectTimeoutMs?: number;
  /** ServerAliveInterval from the config, in ms (0 = off). */
  serverAliveIntervalMs?: number;
  serverAliveCountMax?: number;
  /** The hop right before this host (ProxyJump); its own `jump` leads further back. */
  jump?: ResolvedHost;
  /** ProxyCommand (tokens expanded), run with /bin/sh; mutually exclusive with `jump`. */
  proxyCommand?: string;
  /** The config file that was read, if it existed. */
  configFile?: string;
  /** What this host's config asks that only OpenSSH's own client does (CertificateFile, Match exec...). */
  openSshOnly: string[];
  /** Keywords of this host's config the built-in client does not act on (for the log). */
  ignored: string[];
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];
const DEFAULT_GLOBAL_KNOWN_HOSTS = ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'];
const MAX_JUMP_DEPTH = 8;

interface Context {
  home: string;
  localUser: string;
  env: NodeJS.ProcessEnv;
  config: SSHConfig;
  configFile?: string;
  opts: ResolveOptions;
  /** The config has a `Match exec` line (whether it would match is OpenSSH's to say). */
  hasMatchExec: boolean;
  /** Host/Match blocks whose Include brought sections of their own (see expandIncludes). */
  gated: Set<Line>;
}

/** Resolve `spec` like `ssh [-l user] [-p port] [-i file] spec` would (BatchMode). */
export function resolveHost(spec: HostAddress, opts: ResolveOptions = {}): ResolvedHost {
  const home = opts.homeDir ?? os.homedir();
  const env = opts.env ?? process.env;
  const localUser = opts.localUser ?? localUserName(env);
  const configPath = expandTilde(opts.configPath ?? '~/.ssh/config', home);
  const gated = new Set<Line>();
  const { config, found } = loadConfig(configPath, path.join(home, '.ssh'), home, env, gated);
  const systemPath = opts.systemConfigPath === undefined ? (opts.configPath === undefined ? '/etc/ssh/ssh_config' : null) : opts.systemConfigPath;
  if (systemPath) {
    const system = loadConfig(systemPath, path.dirname(systemPath), home, env, gated);
    // After the user's, like ssh: the first value obtained wins. `Host *` first, so the system file's
    // leading lines are not taken into the user file's last block.
    if (system.found) config.push(...SSHConfig.parse('Host *\n'), ...system.config);
  }
  const ctx: Context = { home, localUser, env, config, configFile: found ? configPath : undefined, opts, hasMatchExec: /^\s*Match\b.*\bexec\b/im.test(config.toString()), gated };
  return resolveHop(ctx, spec, { defaultUser: opts.defaultUser, depth: 0 });
}

interface HopOptions {
  defaultUser?: string;
  /** Jump hops given by the caller (a ProxyJump list): they replace this host's own ProxyJump. */
  jumpOverride?: HostAddress[];
  depth: number;
}

function resolveHop(ctx: Context, spec: HostAddress, hop: HopOptions): ResolvedHost {
  const alias = spec.host.trim();
  if (!alias) throw new ResolveError('empty host name');
  if (/[\s'"`$;&|<>\\]/.test(alias)) throw new ResolveError(`invalid host name "${alias}"`);
  if (hop.depth > MAX_JUMP_DEPTH) {
    throw new ResolveError(`ProxyJump chain deeper than ${MAX_JUMP_DEPTH} hops at "${alias}" (a loop in the ssh config?)`);
  }
  const cfg = computeFor(ctx.config, alias);
  const str = (key: string): string | undefined => {
    const v = cfg[key];
    if (v === undefined) return undefined;
    return Array.isArray(v) ? v.join(' ') : v;
  };
  const list = (key: string): string[] | undefined => {
    const v = cfg[key];
    if (v === undefined) return undefined;
    return (Array.isArray(v) ? v : v.split(/\s+/)).filter((s) => s.length > 0);
  };

  const hostnameRaw = str('hostname');
  const hostname = hostnameRaw !== undefined ? percentExpand(hostnameRaw, { h: alias }, 'HostName') : alias;
  const user = spec.user ?? hop.defaultUser ?? str('user') ?? ctx.localUser;
  const port = spec.port ?? parsePort(str('port'), 'Port') ?? 22;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ResolveError(`invalid port ${port} for "${alias}"`);
  const hostKeyAliasRaw = str('hostkeyalias');
  const hostKeyAlias = hostKeyAliasRaw?.toLowerCase();

  // Tokens shared by IdentityFile, IdentityAgent, UserKnownHostsFile (ssh_config(5) TOKENS).
  const localHost = os.hostname();
  const proxyJumpRaw = str('proxyjump');
  const tokens: Record<string, string> = {
    d: ctx.home,
    u: ctx.localUser,
    h: hostname,
    n: alias,
    p: String(port),
    r: user,
    l: localHost,
    L: localHost.split('.')[0] ?? localHost,
    i: String(typeof process.getuid === 'function' ? process.getuid() : 0),
    k: hostKeyAlias ?? alias,
    j: proxyJumpRaw ?? '',
  };
  tokens.C = createHash('sha1').update(`${tokens.l}${hostname}${port}${user}`).digest('hex');
  const expandPath = (value: string, directive: string): string =>
    path.resolve(ctx.home, percentExpand(expandEnv(expandTilde(value, ctx.home), ctx.env, directive), tokens, directive));

  // Identities: -i first, then config; OpenSSH adds its defaults only when neither gave any.
  const identityFiles: IdentityFile[] = [];
  const addIdentity = (p: string, explicit: boolean, isDefault: boolean): void => {
    if (!identityFiles.some((f) => f.path === p)) identityFiles.push({ path: p, explicit, isDefault });
  };
  for (const f of ctx.opts.identityFiles ?? []) addIdentity(expandPath(f, '-i'), true, false);
  for (const f of list('identityfile') ?? []) {
    if (f.toLowerCase() === 'none') continue;
    addIdentity(expandPath(f, 'IdentityFile'), false, false);
  }
  if (identityFiles.length === 0) {
    for (const name of DEFAULT_IDENTITIES) addIdentity(path.join(ctx.home, '.ssh', name), false, true);
  }

  const userKnownHostsFiles = ctx.opts.knownHostsFiles && ctx.opts.knownHostsFiles.length > 0
    ? ctx.opts.knownHostsFiles.map((f) => path.resolve(expandTilde(f, ctx.home)))
    : (list('userknownhostsfile') ?? ['~/.ssh/known_hosts', '~/.ssh/known_hosts2'])
      .filter((f) => f.toLowerCase() !== 'none')
      .map((f) => expandPath(f, 'UserKnownHostsFile'));
  const globalKnownHostsFiles = (list('globalknownhostsfile') ?? DEFAULT_GLOBAL_KNOWN_HOSTS)
    .filter((f) => f.toLowerCase() !== 'none')
    .map((f) => expandPath(f, 'GlobalKnownHostsFile'));

  // Agent: explicit option > IdentityAgent > SSH_AUTH_SOCK.
  let identityAgent: string | undefined;
  if (ctx.opts.agentSocket !== undefined) {
    identityAgent = ctx.opts.agentSocket || undefined;
  } else {
    const ia = str('identityagent');
    if (ia === undefined || ia === 'SSH_AUTH_SOCK') identityAgent = ctx.env.SSH_AUTH_SOCK || undefined;
    else if (ia.toLowerCase() === 'none') identityAgent = undefined;
    else identityAgent = expandPath(ia.startsWith('$') && !ia.startsWith('${') ? `\${${ia.slice(1)}}` : ia, 'IdentityAgent');
  }

  const resolved: ResolvedHost = {
    alias,
    hostname,
    port,
    user,
    identityFiles,
    identitiesOnly: yesNo(str('identitiesonly'), 'IdentitiesOnly') ?? false,
    identityAgent,
    userKnownHostsFiles,
    globalKnownHostsFiles,
    strictHostKeyChecking: parseStrict(str('stricthostkeychecking')),
    hashKnownHosts: yesNo(str('hashknownhosts'), 'HashKnownHosts') ?? false,
    hostKeyAlias,
    configFile: ctx.configFile,
    openSshOnly: openSshOnly(cfg, ctx, alias),
    ignored: Object.keys(cfg).filter((k) => !HANDLED.has(k.toLowerCase())),
  };
  const connectTimeout = parseSeconds(str('connecttimeout'), 'ConnectTimeout');
  if (connectTimeout !== undefined && connectTimeout > 0) resolved.connectTimeoutMs = connectTimeout * 1000;
  const aliveInterval = parseSeconds(str('serveraliveinterval'), 'ServerAliveInterval');
  if (aliveInterval !== undefined) resolved.serverAliveIntervalMs = aliveInterval * 1000;
  const aliveCount = parseSeconds(str('serveralivecountmax'), 'ServerAliveCountMax');
  if (aliveCount !== undefined) resolved.serverAliveCountMax = aliveCount;

  // ProxyJump / ProxyCommand: whichever the config gave first wins, like OpenSSH.
  const keys = Object.keys(cfg);
  const jumpIdx = keys.indexOf('proxyjump');
  const cmdIdx = keys.indexOf('proxycommand');
  const proxyTokens = { h: hostname, n: alias, p: String(port), r: user };
  let hops: HostAddress[] | undefined = hop.jumpOverride;
  if (hops === undefined) {
    const useCommand = cmdIdx >= 0 && (jumpIdx < 0 || cmdIdx < jumpIdx);
    if (useCommand) {
      const cmd = str('proxycommand')!;
      if (cmd.toLowerCase() !== 'none') resolved.proxyCommand = percentExpand(cmd, proxyTokens, 'ProxyCommand');
    } else if (proxyJumpRaw !== undefined && proxyJumpRaw.toLowerCase() !== 'none') {
      hops = parseProxyJump(percentExpand(proxyJumpRaw, proxyTokens, 'ProxyJump'));
    }
  }
  if (hops && hops.length > 0) {
    const last = hops[hops.length - 1]!;
    // `Host * / ProxyJump bastion` can only mean "reach bastion directly" (OpenSSH 9.2 stops with "jumphost loop").
    const sameAsSelf = (last.host === alias || last.host === hostname) && (last.port ?? 22) === port;
    if (!sameAsSelf) {
      resolved.jump = resolveHop(ctx, last, {
        jumpOverride: hops.length > 1 ? hops.slice(0, -1) : undefined,
        depth: hop.depth + 1,
      });
    }
  }
  return resolved;
}

/** Keywords the built-in client can't honour; each sends the host to OpenSSH under `--ssh auto`. */
const OPENSSH_ONLY = ['certificatefile', 'pkcs11provider', 'securitykeyprovider', 'knownhostscommand', 'controlmaster', 'hostbasedauthentication'];

function openSshOnly(cfg: Record<string, string | string[]>, ctx: Context, alias: string): string[] {
  const found = OPENSSH_ONLY.filter((k) => cfg[k] !== undefined && !/^(no|none)$/i.test(String(cfg[k])));
  // `Match exec` is never run here (it would run the config's commands for every host): OpenSSH can.
  if (ctx.hasMatchExec) found.push('match exec');
  for (const block of ctx.gated) {
    // Whether this host matches the block: its header alone, with a marker, computed for the alias.
    const alone = SSHConfig.parse('');
    alone.push(block);
    const header = SSHConfig.stringify(alone).split('\n').find((l) => l.trim() !== '') ?? '';
    const probe = SSHConfig.parse(`${header.trim()}\n  HostKeyAlias herd-gated\n`);
    if (computeFor(probe, alias).hostkeyalias === 'herd-gated') {
      found.push('an Include of Host sections inside a Host block');
      break;
    }
  }
  return found;
}

/**
 * Settings of the host's config that the built-in client does not act on (the rest it does, or sends
 * the host to OpenSSH for): named once in the host's log.
 */
const HANDLED = new Set([
  'host', 'match', 'include', 'hostname', 'user', 'port', 'identityfile', 'identitiesonly', 'identityagent', 'userknownhostsfile',
  'globalknownhostsfile', 'stricthostkeychecking', 'hashknownhosts', 'hostkeyalias', 'connecttimeout', 'serveraliveinterval',
  'serveralivecountmax', 'proxyjump', 'proxycommand', 'batchmode', 'passwordauthentication', 'kbdinteractiveauthentication',
  'pubkeyauthentication', 'preferredauthentications', 'checkhostip',
  ...OPENSSH_ONLY,
]);

function localUserName(env: NodeJS.ProcessEnv): string {
  try {
    return os.userInfo().username;
  } catch {
    return env.USER ?? env.LOGNAME ?? 'root';
  }
}
