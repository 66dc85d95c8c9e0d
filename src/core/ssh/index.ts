// SSH for herd: OpenSSH-compatible host resolution, host key checking, connections and shell quoting.
export { resolveHost } from './config.js';
export type { IdentityFile, ResolveOptions, ResolvedHost } from './config.js';
export { parseProxyJump, parseUserHostPort, ResolveError } from './config-parse.js';
export type { StrictHostKeyChecking } from './config-parse.js';
export {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  formatKnownHostsLine,
  hashHostName,
  knownHostsName,
  keyTypeOf,
  parseKnownHosts,
} from './known-hosts.js';
export type { HostKeyCheck, HostKeyStatus, KnownHostsEntry } from './known-hosts.js';
export { connectHost } from './connect.js';
export { SshError } from './errors.js';
export { closeCause } from './connection.js';
export type { RemoteChannel, SshConnection, SshLog, SshSettings } from './connection.js';
export { ForwardRefused, type Tunnel } from './forward.js';
export type { SshErrorKind } from './errors.js';
export { shellCommand, shellQuote } from './quote.js';
