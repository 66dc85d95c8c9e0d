// One SSH connection per host with OpenSSH semantics: resolve the host, then the built-in client or OpenSSH.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolveHost, type ResolvedHost } from './config.js';
import { ResolveError } from './config-parse.js';
import type { HostSpec } from '../hosts.js';
import type { SshConnection, SshLog, SshSettings } from './connection.js';
import { fail, tildePath } from './errors.js';
import { effectivePolicy } from './host-key.js';
import { hasCertAuthority, knownKeyTypes } from './known-hosts.js';
import { openHop } from './builtin.js';
import { connectOpenSsh } from './openssh.js';

/** Connect to `target` like `ssh -o BatchMode=yes target` would; rejects with SshError. */
export async function connectHost(target: HostSpec, settings: SshSettings, log: SshLog): Promise<SshConnection> {
  let resolved: ResolvedHost;
  try {
    resolved = resolveHost(
      { host: target.host, ...(target.user !== undefined ? { user: target.user } : {}), ...(target.port !== undefined ? { port: target.port } : {}) },
      {
        configPath: settings.configPath,
        defaultUser: settings.defaultUser,
        identityFiles: settings.identityFiles,
        knownHostsFiles: settings.knownHostsFiles,
        agentSocket: settings.agentSocket,
      },
    );
  } catch (err) {
    if (err instanceof ResolveError) throw fail('resolve', `${target.label}: ${err.message}`, 'fix the host entry or ~/.ssh/config');
    throw err;
  }
  checkExplicitIdentities(target.label, resolved);
  const client = settings.client ?? 'auto';
  const why = client === 'auto' ? openSshReason(resolved) : undefined;
  if (client === 'openssh' || (why && hasOpenSsh())) {
    log(`using OpenSSH's ssh for this host${why ? ` (${why})` : ' (--ssh openssh)'}`);
    return connectOpenSsh(target, resolved, settings, effectivePolicy(settings, resolved).policy, log);
  }
  if (why) log(`${why}, but OpenSSH's ssh is not installed: the built-in client tries without it`);
  if (resolved.ignored.length > 0) log(`the built-in client does not use these ssh config settings: ${resolved.ignored.join(', ')} (--ssh openssh would)`);
  return openHop(target.label, resolved, settings, log, false);
}

/** Why the built-in client can't do what this host's config and known_hosts ask, or undefined. */
function openSshReason(r: ResolvedHost): string | undefined {
  if (r.openSshOnly.length > 0) return `the ssh config has ${r.openSshOnly.join(', ')}, which only OpenSSH does`;
  const names = [r.hostKeyAlias ?? r.hostname.toLowerCase()];
  const files = [...r.userKnownHostsFiles, ...r.globalKnownHostsFiles];
  if (hasCertAuthority(files, names, r.port) && knownKeyTypes(files, names, r.port).length === 0) {
    return 'known_hosts vouches for it with @cert-authority only (a host certificate)';
  }
  return undefined;
}

let openSshInstalled: boolean | undefined;
function hasOpenSsh(): boolean {
  openSshInstalled ??= spawnSync('ssh', ['-V'], { stdio: 'ignore', timeout: 5000 }).status === 0;
  return openSshInstalled;
}

/** -i files are the user's explicit choice: a missing or unreadable one stops before any network. */
function checkExplicitIdentities(label: string, r: ResolvedHost): void {
  for (let hop: ResolvedHost | undefined = r; hop; hop = hop.jump) {
    for (const f of hop.identityFiles) {
      if (!f.explicit) continue;
      try {
        readFileSync(f.path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw fail('identity', `${label}: identity file ${tildePath(f.path)} cannot be read (${code})`, 'check the identity file path and its permissions');
      }
    }
  }
}
