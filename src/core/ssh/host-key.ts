// The server's host key checked during the handshake as OpenSSH checks it: known_hosts, the policy for an
// unknown key, and the key types on record preferred.
import type { ServerHostKeyAlgorithm } from 'ssh2';
import type { ResolvedHost } from './config.js';
import type { HostKeyPolicy, SshLog, SshSettings } from './connection.js';
import { fail, tildePath, type SshError } from './errors.js';
import { appendKnownHost, checkHostKey, fingerprint, formatKnownHostsLine, keyTypeOf, knownKeyTypes } from './known-hosts.js';
import { shellQuote } from './quote.js';
import { fixWords, type FrontEnd } from '../front-end.js';

/**
 * What the user told herd beats the ssh config: with known_hosts files or accept-new given to herd,
 * StrictHostKeyChecking is not read. Otherwise the config's `no` or `accept-new` lets herd record an
 * unknown key (as `ssh` would); a changed key fails whatever the config says.
 */
export function effectivePolicy(settings: SshSettings, r: ResolvedHost): { policy: HostKeyPolicy; fromConfig: boolean } {
  if (settings.knownHostsFiles.length > 0 || settings.hostKeyPolicy !== 'strict') return { policy: settings.hostKeyPolicy, fromConfig: false };
  const relaxed = r.strictHostKeyChecking === 'no' || r.strictHostKeyChecking === 'accept-new';
  return relaxed ? { policy: 'accept-new', fromConfig: true } : { policy: 'strict', fromConfig: false };
}

const ALGOS_FOR_KEY_TYPE: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** The name known_hosts records this host under, and the files that vouch for it. */
function keyNameAndFiles(r: ResolvedHost): { keyName: string; files: string[] } {
  return { keyName: r.hostKeyAlias ?? r.hostname.toLowerCase(), files: [...r.userKnownHostsFiles, ...r.globalKnownHostsFiles] };
}

/**
 * The host key algorithms to ask for first: those of the key types known_hosts has for this host, as
 * OpenSSH does, so a host known by its RSA key is not reported unknown just because it also has an
 * ed25519 key. Empty when none is on record.
 */
export function preferredHostKeyAlgorithms(r: ResolvedHost): ServerHostKeyAlgorithm[] {
  const { keyName, files } = keyNameAndFiles(r);
  return knownKeyTypes(files, [keyName], r.port).flatMap((t) => ALGOS_FOR_KEY_TYPE[t] ?? []);
}

/** ssh2's hostVerifier for `r` under `policy`, and the error it refused a key with (the handshake's cause). */
export function hostKeyVerifier(who: string, r: ResolvedHost, policy: HostKeyPolicy, log: SshLog, frontEnd?: FrontEnd): { verify(key: Buffer): boolean; refused(): SshError | undefined } {
  const { keyName, files } = keyNameAndFiles(r);
  let refusal: SshError | undefined;
  const verify = (key: Buffer): boolean => {
    try {
      const fp = fingerprint(key);
      const type = keyTypeOf(key);
      const res = checkHostKey(files, [keyName], r.port, key);
      const lookup = res.lookupName;
      switch (res.status) {
        case 'match':
          log(`host key ${type} ${fp} matches ${tildePath(res.file!)}:${res.line}`);
          return true;
        case 'revoked':
          refusal = fail('host-key-revoked', `${who}: host key ${type} ${fp} for ${lookup} is marked @revoked in ${tildePath(res.file!)}:${res.line}`,
            'the host must get a new host key; do not connect until it has');
          return false;
        case 'changed': {
          const other = res.knownKeyType !== type ? ` (on record: ${res.knownKeyType})` : '';
          refusal = fail('host-key-changed',
            `${who}: HOST KEY CHANGED for ${lookup}: the server offers ${type} ${fp}, which does not match ${tildePath(res.file!)}:${res.line}${other}`,
            `if the change is expected, remove the old key with: ssh-keygen -R ${shellQuote(lookup)} -f ${shellQuote(res.file!)}`);
          return false;
        }
        case 'unknown': {
          if (policy === 'accept-new') {
            const file = r.userKnownHostsFiles[0];
            if (file) {
              try {
                appendKnownHost(file, formatKnownHostsLine(keyName, r.port, key, { hash: r.hashKnownHosts }));
                log(`host key ${type} ${fp} for ${lookup} was new; added to ${tildePath(file)} (accept-new)`);
              } catch (err) {
                log(`host key ${type} ${fp} for ${lookup} was new; accepted, but could not add it to ${tildePath(file)}: ${(err as Error).message}`);
              }
            } else {
              log(`host key ${type} ${fp} for ${lookup} was new; accepted (no known_hosts file to record it in)`);
            }
            return true;
          }
          const kh = r.userKnownHostsFiles[0] ? tildePath(r.userKnownHostsFiles[0]) : '~/.ssh/known_hosts';
          const portArg = r.port !== 22 ? `-p ${r.port} ` : '';
          const alias = r.hostKeyAlias ? ` (then replace the host name by ${r.hostKeyAlias}, the HostKeyAlias)` : '';
          const words = fixWords(frontEnd);
          refusal = fail('host-key-unknown',
            `${who}: host key for ${lookup} is not known (${type} ${fp})`,
            `check that fingerprint with the host's owner, then ${words.addHostKey(`ssh-keyscan ${portArg}${shellQuote(r.hostname)}`, kh)}${alias}; or trust it on first use with ${words.acceptNew}`);
          return false;
        }
      }
    } catch (err) {
      refusal = fail('host-key-unknown', `${who}: cannot check the host key: ${(err as Error).message}`, 'check the known_hosts files');
      return false;
    }
  };
  return { verify, refused: () => refusal };
}
