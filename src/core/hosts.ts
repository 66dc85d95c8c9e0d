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

/** Parses `host`, `user@host`, `host:port`, `user@host:port`, `[v6addr]`, `[v6addr]:port`, or a bare v6 address. */
export function parseHost(raw: string, line?: number): HostSpec {
  const label = raw.trim()
  if (label === '') throw new HostParseError(raw, line, 'is empty')
  if (/\s/.test(label)) throw new HostParseError(label, line, 'contains white space; write one host per line')
  let rest = label
  let user: string | undefined
  const at = rest.lastIndexOf('@')
  if (at >= 0) {
    user = rest.slice(0, at)
    rest = rest.slice(at + 1)
    if (user === '' || !/^[A-Za-z0-9_.-]+$/.test(user)) throw new HostParseError(label, line, 'has an invalid user name; write user@host')
  }
  let host: string
  let port: number | undefined
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']')
    if (close < 0) throw new HostParseError(label, line, "has '[' without ']'; write [v6addr]:port")
    host = rest.slice(1, close)
    const after = rest.slice(close + 1)
    if (after !== '') {
      if (!after.startsWith(':')) throw new HostParseError(label, line, "has text after ']'; write [v6addr]:port")
      port = parsePort(after.slice(1), label, line)
    }
    if (!/^[0-9A-Fa-f:.%a-z]+$/.test(host) || !host.includes(':')) throw new HostParseError(label, line, 'is not an IPv6 address inside [ ]')
  } else if ((rest.match(/:/g) ?? []).length > 1) {
    host = rest // a bare IPv6 address, no port
    if (!/^[0-9A-Fa-f:.]+$/.test(host)) throw new HostParseError(label, line, 'is not a valid IPv6 address; write [v6addr]:port')
  } else {
    const colon = rest.indexOf(':')
    host = colon >= 0 ? rest.slice(0, colon) : rest
    if (colon >= 0) port = parsePort(rest.slice(colon + 1), label, line)
    if (!HOST_RE.test(host)) throw new HostParseError(label, line, 'is not a valid host name; use letters, digits, dots and dashes, or an ssh config alias')
  }
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
