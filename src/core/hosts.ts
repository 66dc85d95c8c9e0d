// The inventory: herd.py hosts files (one host per line, # comments) and host lists, parsed into targets.

/** Where a host is, as ssh resolves it: a name, alias or address, and the user and port when given. */
export interface HostAddress {
  host: string
  user?: string
  port?: number
}

/** One host as the user named it. */
export interface HostSpec extends HostAddress {
  /** The text the user wrote (trimmed), used in messages, logs and reports. */
  label: string
}

/** A host line that can't be understood; `line` is 1-based when it came from a file. */
export class HostParseError extends Error {
  constructor(readonly text: string, readonly line: number | undefined, reason: string) {
    super(`${line !== undefined ? `line ${line}: ` : ''}'${text}' ${reason}`)
  }
}

const HOST_RE = /^[A-Za-z0-9_.%-]+$/

/** A TCP port written as digits, 1 to 65535; undefined for anything else. The one rule for every port herd reads. */
export function portNumber(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined
  const n = Number(text)
  return n >= 1 && n <= 65535 ? n : undefined
}

function parsePort(text: string, raw: string, line?: number): number {
  const port = portNumber(text)
  if (port === undefined) throw new HostParseError(raw, line, `has an invalid port '${text}'; use a number from 1 to 65535`)
  return port
}

/** A host's address split into its parts as written, before any of them is checked. */
export interface AddressParts {
  user?: string
  host: string
  /** The text after the port's `:` (maybe empty); undefined when there is no `:port`. */
  port?: string
  /** A name or IPv4 address, an address in `[ ]`, or a bare IPv6 address (two or more `:`, so no port). */
  form: 'name' | 'bracketed' | 'bare-v6'
  /** Why the text has no reading: a `[` without `]`, or text after `]` that is not `:port` (in `after`). */
  fault?: 'unclosed' | 'after-bracket'
  after?: string
}

/**
 * Where the user, host and port are in `[user@]host[:port]`, `[user@][v6addr][:port]` or `[user@]v6addr`:
 * the one reading of an address for a hosts line and a ProxyJump hop alike. The user is all before the
 * last `@`. Each reader checks the parts with its own rules and messages.
 */
export function splitAddress(text: string): AddressParts {
  const at = text.lastIndexOf('@')
  const user = at >= 0 ? text.slice(0, at) : undefined
  const rest = at >= 0 ? text.slice(at + 1) : text
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']')
    if (close < 0) return { user, host: '', form: 'bracketed', fault: 'unclosed' }
    const host = rest.slice(1, close)
    const after = rest.slice(close + 1)
    if (after === '') return { user, host, form: 'bracketed' }
    if (!after.startsWith(':')) return { user, host, form: 'bracketed', fault: 'after-bracket', after }
    return { user, host, port: after.slice(1), form: 'bracketed' }
  }
  if ((rest.match(/:/g) ?? []).length > 1) return { user, host: rest, form: 'bare-v6' }
  const colon = rest.indexOf(':')
  if (colon < 0) return { user, host: rest, form: 'name' }
  return { user, host: rest.slice(0, colon), port: rest.slice(colon + 1), form: 'name' }
}

/** Parses `host`, `user@host`, `host:port`, `user@host:port`, `[v6addr]`, `[v6addr]:port`, or a bare v6 address. */
export function parseHost(raw: string, line?: number): HostSpec {
  const label = raw.trim()
  if (label === '') throw new HostParseError(raw, line, 'is empty')
  if (/\s/.test(label)) throw new HostParseError(label, line, 'contains white space; write one host per line')
  const { user, host, port: portText, form, fault } = splitAddress(label)
  if (user !== undefined && !/^[A-Za-z0-9_.-]+$/.test(user)) throw new HostParseError(label, line, 'has an invalid user name; write user@host')
  if (fault === 'unclosed') throw new HostParseError(label, line, "has '[' without ']'; write [v6addr]:port")
  if (fault === 'after-bracket') throw new HostParseError(label, line, "has text after ']'; write [v6addr]:port")
  const port = portText === undefined ? undefined : parsePort(portText, label, line)
  if (form === 'bracketed' && (!/^[0-9A-Fa-f:.%a-z]+$/.test(host) || !host.includes(':'))) throw new HostParseError(label, line, 'is not an IPv6 address inside [ ]')
  if (form === 'bare-v6' && !/^[0-9A-Fa-f:.]+$/.test(host)) throw new HostParseError(label, line, 'is not a valid IPv6 address; write [v6addr]:port')
  if (form === 'name' && !HOST_RE.test(host)) throw new HostParseError(label, line, 'is not a valid host name; use letters, digits, dots and dashes, or an ssh config alias')
  if (host === '') throw new HostParseError(label, line, 'has no host name')
  return { label, host, user, port }
}

/** Drops repeats of the same user/host/port, keeping the first, in order. */
export function uniqueHosts(hosts: HostSpec[]): HostSpec[] {
  const seen = new Set<string>()
  return hosts.filter((h) => {
    const key = `${h.user ?? ''}@${h.host.toLowerCase()}:${h.port ?? ''}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** Parses a hosts file's text: one host per line, blank lines and `#` comments ignored. */
export function parseHostsText(text: string): HostSpec[] {
  const hosts: HostSpec[] = []
  text.split(/\r?\n/).forEach((rawLine, i) => {
    const line = rawLine.replace(/#.*$/, '').trim()
    if (line !== '') hosts.push(parseHost(line, i + 1))
  })
  return uniqueHosts(hosts)
}

/** Parses a list such as `--hostlist a,b,c` (commas or white space). */
export function parseHostList(list: string): HostSpec[] {
  return uniqueHosts(list.split(/[\s,]+/).filter((s) => s !== '').map((s) => parseHost(s)))
}
