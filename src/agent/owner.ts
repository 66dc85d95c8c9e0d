// --owner and --group on the host: names resolved as the host resolves them (NSS through getent, else /etc files).
import fs from 'node:fs'
import { execFileSync } from 'node:child_process'
import { AgentError, type Owner } from './destination.js'

/** The id of a user (`passwd`) or group (`group`) name on this host; numbers are taken as they are. */
export function resolveId(db: 'passwd' | 'group', name: string): number {
  if (/^\d+$/.test(name)) return Number(name)
  let line = ''
  try {
    // getent asks NSS (LDAP, sssd) as `ls -l` and `chown` do; the name is an argument, never shell text.
    line = execFileSync('getent', [db, name], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] })
  } catch {
    line = fs.readFileSync(`/etc/${db}`, 'utf8').split('\n').find((l) => l.split(':')[0] === name) ?? ''
  }
  const id = Number(line.split(':')[2])
  if (!line || !Number.isInteger(id)) {
    throw new AgentError('not-writable', `no ${db === 'passwd' ? 'user' : 'group'} named ${name} on this host; create it there or give another --${db === 'passwd' ? 'owner' : 'group'}`)
  }
  return id
}

/** The uid and gid `--owner` and `--group` ask for (absent: not asked). */
export function requestedOwner(opts: { owner?: string; group?: string }): Owner {
  return {
    uid: opts.owner === undefined ? undefined : resolveId('passwd', opts.owner),
    gid: opts.group === undefined ? undefined : resolveId('group', opts.group),
  }
}

/** The failure for an owner this login may not give: a clear cause, never a silent fallback. */
export function chownFailure(err: NodeJS.ErrnoException, what: string, owner: Owner): AgentError {
  return new AgentError('not-writable', `${what} cannot be given owner ${owner.uid ?? '-'}:${owner.gid ?? '-'} by this login (${err.code}); connect as root (or a user who may chown), or leave --owner/--group out`)
}
