// Whether a host has any key herd could offer it, read from the runner alone, so a run without any key stops before a host is touched.
import { existsSync } from 'node:fs';
import type { HostAddress } from '../hosts.js';
import { resolveHost, type ResolveOptions } from './config.js';
import { ResolveError } from './config-parse.js';

/**
 * True when the host, as the ssh config resolves it, has an agent socket or a key file that exists, or
 * asks for what only OpenSSH reads (a PKCS#11 or FIDO provider). A config the built-in resolver can't
 * read counts as true: the host's own run reports that, with its cause.
 */
export function canOfferKey(spec: HostAddress, opts: ResolveOptions): boolean {
  try {
    const r = resolveHost(spec, opts);
    if (r.openSshOnly.length > 0) return true;
    if (r.identityAgent && existsSync(r.identityAgent)) return true;
    return r.identityFiles.some((f) => existsSync(f.path));
  } catch (err) {
    if (err instanceof ResolveError) return true;
    throw err;
  }
}
