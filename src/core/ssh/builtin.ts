// One hop of the built-in client (ssh2): the way there, the host key, authentication and the handshake.
import ssh2 from 'ssh2';
import type { ConnectConfig } from 'ssh2';
import { makeAuth } from './auth.js';
import type { ResolvedHost } from './config.js';
import type { SshLog, SshSettings } from './connection.js';
import { fail, handshakeError, tildePath, type SshError } from './errors.js';
import { effectivePolicy, hostKeyVerifier, preferredHostKeyAlgorithms } from './host-key.js';
import { openTransport } from './transport.js';
import { builtinConnection, type BuiltinConnection } from './builtin-session.js';
import { fixWords } from '../front-end.js';

const { Client } = ssh2;

/** Connects to `r` (through its jump hosts, each opened the same way) and authenticates; rejects with SshError. */
export async function openHop(label: string, r: ResolvedHost, settings: SshSettings, baseLog: SshLog, isJump: boolean): Promise<BuiltinConnection> {
  const who = isJump ? `${label}: jump host ${r.alias}` : label;
  const log: SshLog = isJump ? (line) => baseLog(`[jump ${r.alias}] ${line}`) : baseLog;
  const addr = `${r.hostname}:${r.port}`;
  const timeoutMs = r.connectTimeoutMs ?? settings.connectTimeoutMs;
  const started = Date.now();
  log(
    `resolved ${r.alias} -> ${r.user}@${addr}` +
      (r.configFile ? ` (ssh config ${tildePath(r.configFile)})` : ' (no ssh config)') +
      (r.jump ? ` via ${r.jump.alias}` : '') +
      (r.proxyCommand ? ' via ProxyCommand' : ''),
  );
  const { sock, localAddress, jump } = await openTransport(who, label, r, timeoutMs, log, (via) => openHop(label, via, settings, baseLog, true));

  const { policy, fromConfig } = effectivePolicy(settings, r);
  if (fromConfig) log(`host key policy ${policy} (StrictHostKeyChecking ${r.strictHostKeyChecking} in ssh config; a changed key still fails)`);
  const hostKey = hostKeyVerifier(who, r, policy, log, settings.frontEnd);
  const preferredAlgos = preferredHostKeyAlgorithms(r);
  const auth = makeAuth(who, r, settings.passphrase, log, fixWords(settings.frontEnd));
  const client = new Client();
  // ssh2 may emit more errors after the one we act on (e.g. "Connection lost" after a timeout).
  client.on('error', () => {});
  // The config's ServerAliveInterval is the user's choice; herd's own interval only where it has none.
  const keepalive = r.serverAliveIntervalMs !== undefined
    ? { interval: r.serverAliveIntervalMs, count: r.serverAliveCountMax ?? 3 }
    : { interval: settings.keepaliveIntervalMs, count: 3 };
  const config: ConnectConfig = {
    sock,
    username: r.user,
    readyTimeout: Math.max(1000, timeoutMs - (Date.now() - started)),
    // ssh2 sends the keepalives, but it counts a connection dead when its own replies are late, even while
    // the server's packets keep coming (they queue behind the data on a saturated uplink): the connection
    // judges liveness itself, from any byte heard, as OpenSSH does (builtin-session.ts).
    keepaliveInterval: keepalive.interval,
    keepaliveCountMax: Number.POSITIVE_INFINITY,
    hostVerifier: hostKey.verify,
    authHandler: auth.handler,
    ...(preferredAlgos.length > 0 ? { algorithms: { serverHostKey: { remove: preferredAlgos, prepend: preferredAlgos, append: [] } } } : {}),
  };
  const context = () => ({ who, host: r.hostname, port: r.port, timeoutMs, refusedKey: hostKey.refused(), auth });

  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: SshError): void => {
        if (settled) return;
        settled = true;
        client.removeListener('error', onError);
        client.removeListener('ready', onReady);
        client.removeListener('close', onEarlyClose);
        if (err) reject(err);
        else resolve();
      };
      const onError = (err: Error & { level?: string; code?: unknown }): void => {
        // Agent trouble and a key that cannot sign are not fatal: ssh2 goes on with the next method.
        if (err.level === 'agent') {
          log(`auth: ssh-agent error: ${err.message}`);
          return;
        }
        if (err.level === 'client-authentication' && !/All configured authentication methods failed/.test(err.message)) {
          log(`auth: ${err.message}`);
          return;
        }
        finish(handshakeError(err, context()));
      };
      const onReady = (): void => finish();
      const onEarlyClose = (): void => finish(hostKey.refused() ?? (auth.started() ? auth.failure() :
        fail('connect', `${who}: connection to ${addr} closed during the SSH handshake`, 'check that this port is an SSH server and that it accepts this client (MaxStartups, firewall)')));
      client.on('error', onError);
      client.once('ready', onReady);
      client.once('close', onEarlyClose);
      try {
        client.connect(config);
      } catch (err) {
        finish(fail('connect', `${who}: cannot start SSH: ${(err as Error).message}`, 'this is a bug in herd; please report it'));
      }
    });
  } catch (err) {
    client.destroy();
    sock.destroy();
    jump?.release();
    throw err;
  }
  log(`authenticated as ${r.user} with ${auth.succeeded()} in ${Date.now() - started} ms`);
  return builtinConnection({ who, label, r, client, sock, localAddress, jump, keepalive });
}
