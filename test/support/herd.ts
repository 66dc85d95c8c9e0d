// Runs the committed herd CLI (dist/) inside a test cluster's runner namespace and reads what it reports.
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { run, type Cluster, type ClusterHost, type RunResult } from './cluster.js'
import type { Report } from '../../src/core/report.js'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const cliPath = path.join(repoRoot, 'dist', 'cli', 'index.js')

/** A file of random bytes; returns its path and sha256. */
export function randomFile(dir: string, name: string, bytes: number, mode = 0o644): { path: string; sha256: string } {
  const file = path.join(dir, name)
  const hash = crypto.createHash('sha256')
  const fd = fs.openSync(file, 'w', mode)
  const chunk = 4 * 1024 * 1024
  for (let done = 0; done < bytes; done += chunk) {
    const buf = crypto.randomBytes(Math.min(chunk, bytes - done))
    hash.update(buf)
    fs.writeSync(fd, buf)
  }
  fs.closeSync(fd)
  fs.chmodSync(file, mode)
  return { path: file, sha256: hash.digest('hex') }
}

/** A hosts file naming the given hosts by their ssh config aliases. */
export function hostsFile(dir: string, hosts: ClusterHost[], name = 'hosts.txt'): string {
  const file = path.join(dir, name)
  fs.writeFileSync(file, `# test hosts\n${hosts.map((h) => h.alias).join('\n')}\n`)
  return file
}

export interface HerdResult extends RunResult {
  report?: Report
}

/** Runs `node dist/cli/index.js ARGS --json` in the runner namespace; parses the JSON report. */
export async function herd(cluster: Cluster, args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<HerdResult> {
  const r = await cluster.runInRunner(['node', cliPath, ...args, '--json'], { env: cluster.env(opts.env), timeoutMs: opts.timeoutMs ?? 120_000, cwd: repoRoot })
  let report: Report | undefined
  try {
    report = JSON.parse(r.stdout) as Report
  } catch {}
  return { ...r, report }
}

/** A herd run started detached in the runner namespace (its own process group). */
export interface StartedHerd {
  pid: number
  /** Its exit, output and parsed report (killed with SIGKILL after limitMs). */
  done: Promise<{ code: number | null; stdout: string; stderr: string; report?: Report }>
  /** SIGKILL to its process group, if it still runs. */
  kill(): void
}

/**
 * Starts `node dist/cli/index.js ARGS --json` detached in the runner namespace. Put `kill` where the test
 * file's afterEach calls it, so a test that fails half way leaves no run holding the port and the hosts.
 */
export function startHerd(cluster: Cluster, args: string[], opts: { limitMs?: number; env?: Record<string, string> } = {}): StartedHerd {
  const child = cluster.spawnInRunner(['node', cliPath, ...args, '--json'], { cwd: repoRoot, env: cluster.env(opts.env) })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d))
  child.stderr!.on('data', (d: Buffer) => (stderr += d))
  child.stdin!.end()
  const done = new Promise<{ code: number | null; stdout: string; stderr: string; report?: Report }>((resolve) => {
    const killer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), opts.limitMs ?? 120_000)
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      let report: Report | undefined
      try {
        report = JSON.parse(stdout) as Report
      } catch {}
      resolve({ code: code ?? (signal ? -1 : null), stdout, stderr, report })
    })
  })
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL')
  }
  return { pid: child.pid!, done, kill }
}

/** Files herd left beside a destination (temporary files must never stay). */
export function leftovers(cluster: Cluster, host: ClusterHost, destination: string): string[] {
  const dir = cluster.hostPath(host, path.dirname(destination))
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).filter((n) => n.includes('.herd-'))
}

/** Bytes on disk of the temporary file herd is filling beside `dest` on a host (0 when there is none). */
export function partialBytes(cluster: Cluster, h: ClusterHost, dest: string): number {
  const dir = cluster.hostPath(h, path.dirname(dest))
  const name = fs.existsSync(dir) ? fs.readdirSync(dir).find((n) => n.startsWith(`.${path.basename(dest)}.herd-`) && n.endsWith('.part')) : undefined
  if (!name) return 0
  try {
    return fs.statSync(path.join(dir, name)).blocks * 512
  } catch {
    return 0
  }
}

/** The `N bytes already verified` figures of every agent start in a host log. */
export function verifiedAtStart(log: string): number[] {
  return [...log.matchAll(/agent ready \(pid \d+, node [^)]*\); (\d+) bytes already verified/g)].map((m) => Number(m[1]))
}

/** How many SSH connections a host's sshd has logged so far (its log is at LogLevel VERBOSE). */
export function sshConnections(host: ClusterHost): number {
  try {
    return (fs.readFileSync(host.logPath, 'utf8').match(/Connection from /g) ?? []).length
  } catch {
    return 0
  }
}

/**
 * How many SSH connections each host's sshd has logged, everything up to now included: a TCP connection
 * of our own from the runner's namespace marks "now" (and counts), and we wait until each sshd has logged
 * it. Compare two of these: whatever connected in between shows as more than the one marker.
 */
export async function sshConnectionsUpToNow(cluster: Cluster, hosts: ClusterHost[]): Promise<number[]> {
  const script =
    "const net=require('net');Promise.all(process.argv.slice(1).map((a)=>new Promise((ok,fail)=>{" +
    "const s=net.connect({host:a,port:22});s.setTimeout(10000,()=>fail(new Error('no banner from '+a)));" +
    "s.once('data',()=>{ok(s.localPort);s.destroy()});s.once('error',fail)}))).then((p)=>console.log(p.join(' ')))"
  const r = await cluster.runInRunner(['node', '-e', script, ...hosts.map((h) => h.address)], { timeoutMs: 20_000 })
  const ports = r.stdout.trim().split(' ')
  if (ports.length !== hosts.length) throw new Error(`marker connections failed: ${r.stderr}`)
  await Promise.all(
    hosts.map((h, i) => waitUntil(`${h.alias}'s sshd to log the marker connection`, () => {
      try {
        return fs.readFileSync(h.logPath, 'utf8').includes(` port ${ports[i]} on `)
      } catch {
        return false
      }
    }, 10_000)),
  )
  return hosts.map(sshConnections)
}

/** Runs a shell script inside the mount namespace of a host's sshd: what herd's sessions see (mounts made there included). */
export function inSshdMounts(host: ClusterHost, script: string, timeoutMs = 30_000): Promise<RunResult> {
  if (!host.sshdPid) throw new Error(`${host.alias}: sshd is not running`)
  return run('nsenter', ['-t', String(host.sshdPid), '-m', '-n', 'sh', '-c', script], { timeoutMs })
}

/** Polls `probe` every 100 ms until it returns true; fails after timeoutMs naming `what`. */
export async function waitUntil(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * A `--node` wrapper for a host: runs the shell command `onAgent` when herd starts its agent (the command
 * line names agent-<hash>.mjs, whatever node flags come first), and this machine's node otherwise.
 */
export function nodeWrapper(onAgent: string): string {
  return `#!/bin/sh\ncase "$*" in\n  *agent-*.mjs*) ${onAgent} ;;\nesac\nexec ${process.execPath} "$@"\n`
}
