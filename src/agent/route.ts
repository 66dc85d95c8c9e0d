// How this host reaches the runner: the first route whose seeder accepts a TCP connection in time.
import net from 'node:net'
import type { RunnerRoute } from '../core/protocol.js'
import { AgentError } from './destination.js'

/** `addr:port` (IPv6 in brackets) as host and port. */
export function hostPort(peer: string): { host: string; port: number } {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(peer)
  if (!m) throw new AgentError('protocol', `the runner's seeder address ${peer} is not addr:port`)
  return { host: m[1]!, port: Number(m[2]) }
}

/** Resolves once `peer` accepts a TCP connection (closed again at once), rejects with the reason. */
function probe(peer: string, timeoutMs: number): Promise<void> {
  const { host, port } = hostPort(peer)
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer in ${timeoutMs / 1000} s`))
    }, timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.destroy()
      resolve()
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(new Error(err.code ?? err.message))
    })
  })
}

/** How long one route may take to accept a connection. */
const PROBE_TIMEOUT_MS = 5000

function describe(route: RunnerRoute): string {
  return route.via === 'ssh' ? `through SSH (${route.seedPeer} on this host)` : `at ${route.seedPeer}`
}

/**
 * Happy eyeballs over the routes: route k is tried `headStartMs` after route k-1 unless that one has
 * failed already, and the first to accept a connection wins. A direct route that answers within the
 * head start (any datacenter) is always taken; behind a firewall that drops packets the SSH route
 * costs the head start, not a connect timeout.
 */
export function pickRoute(routes: RunnerRoute[], headStartMs: number, log: (line: string) => void): Promise<RunnerRoute> {
  return new Promise((resolve, reject) => {
    const failures: string[] = new Array(routes.length)
    let failed = 0
    let next = 0
    let won = false
    let timer: NodeJS.Timeout | undefined
    const tryNext = () => {
      clearTimeout(timer)
      if (won || next >= routes.length) return
      const index = next++
      const route = routes[index]!
      probe(route.seedPeer, PROBE_TIMEOUT_MS).then(
        () => {
          if (won) return
          won = true
          clearTimeout(timer)
          const before = failures.filter(Boolean)
          if (index > 0) log(`runner reached ${describe(route)}; not ${before.length ? before.join(' or ') : `${describe(routes[0]!)} within ${headStartMs} ms`}`)
          resolve(route)
        },
        (err: Error) => {
          failures[index] = `${describe(route)} (${err.message})`
          if (++failed === routes.length) return reject(new AgentError('unreachable', `cannot reach the runner ${failures.join(' or ')}`))
          if (index === next - 1) tryNext()
        },
      )
      if (next < routes.length) timer = setTimeout(tryNext, headStartMs)
    }
    if (routes.length === 0) return reject(new AgentError('unreachable', 'the runner gave no way to reach it'))
    tryNext()
  })
}

/**
 * This host's address as the host that opened its SSH connection dialled it (sshd's SSH_CONNECTION):
 * what the other hosts, on the same network, dial too. Announced when the tracker only sees a tunnel.
 */
export function sshServerAddress(): string | undefined {
  const parts = (process.env.SSH_CONNECTION ?? '').trim().split(/\s+/)
  return parts.length === 4 && net.isIP(parts[2]!) ? parts[2] : undefined
}
