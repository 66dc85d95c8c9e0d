// What every method of a benchmark point shares (runner commands in the runner's cgroup, CPU counting, sha256 checks, cleanup between methods), and the scp and floor methods.
import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { run, type Cluster, type RunResult } from '../test/support/cluster.js'
import { cpuBetween, inGroup, readGroups, type PointGroups } from './cpu.js'
import { runFloor } from './floor-run.js'
import type { CpuUse, FloorRun, ScpRun } from './model.js'
import { GiB } from './options.js'

/** Where every method writes on the hosts (each host's /srv is its own). */
export const DESTINATION = '/srv/bench.bin'

export interface BenchFile {
  path: string
  sha256: string
  size: number
}

/**
 * Cluster.runInRunner, but in the runner's cgroup: the group is joined before `ip netns exec` (which hides
 * the cgroup mounts); `nice` is its session's autogroup nice (runnerNice).
 */
export function runCounted(cluster: Cluster, groups: PointGroups | undefined, argv: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string; nice?: number }): Promise<RunResult> {
  const full = inGroup(groups?.runner, ['ip', 'netns', 'exec', cluster.runnerNetns, ...argv], opts.nice)
  return run(full[0]!, full.slice(1), { env: opts.env ?? cluster.env(), cwd: opts.cwd, timeoutMs: opts.timeoutMs })
}

export async function countVerified(cluster: Cluster, sha256: string): Promise<number> {
  const sums = await Promise.all(cluster.hosts.map((h) => cluster.sha256On(h, DESTINATION)))
  return sums.filter((s) => s === sha256).length
}

/**
 * Waits (at most 10 s) until nothing but sshd runs on any host, so a method's CPU is all in before the
 * reading and the next method starts on a quiet cluster; kills (by PID) whatever a failed method left.
 */
export async function settle(cluster: Cluster): Promise<string[]> {
  const left = (await Promise.all(cluster.hosts.map((h) => cluster.waitForNoStrayProcesses(h, 10_000)))).flat()
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {
      // gone meanwhile
    }
  }
  return left.map((p) => `${p.pid} ${p.cmdline.slice(0, 80)}`)
}

/** Removes the destination (and any temporary file beside it) on every host, between methods. */
export function clearDestination(cluster: Cluster): void {
  const base = path.posix.basename(DESTINATION)
  for (const h of cluster.hosts) {
    const dir = cluster.hostPath(h, path.posix.dirname(DESTINATION))
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      if (name === base || name.startsWith(`.${base}`)) fs.rmSync(path.join(dir, name), { force: true })
    }
  }
}

/**
 * Runs one method between two readings of the point's cgroups; the second reading waits until the
 * hosts are quiet. Then clears the destination for the next method, whatever happened.
 */
/**
 * Writes and deletes `bytes` of zeros in `dir`, so the method that follows finds as many free pages just
 * freed as the others do. This machine is a VM whose freed memory goes back to its host within seconds
 * (free page reporting): a page touched again costs a fault on the host, and writing a new 1 GiB file
 * took 2.8 s of system time the first time, 0.4 s right after another file was deleted, 1.5 s three
 * seconds later. Without this, the first method of a point (herd) paid that and the next ones did not.
 */
function primeFreePages(dir: string, bytes: number): void {
  const scratch = path.join(dir, 'prime.bin')
  const zeros = Buffer.alloc(1024 * 1024)
  const fd = fs.openSync(scratch, 'w')
  try {
    for (let done = 0; done < bytes; done += zeros.length) fs.writeSync(fd, zeros)
  } finally {
    fs.closeSync(fd)
    fs.rmSync(scratch, { force: true })
  }
}

export async function measured<T extends { cpu?: CpuUse; error?: string }>(cluster: Cluster, groups: PointGroups | undefined, file: BenchFile, method: () => Promise<T>, fallback: (error: string) => T): Promise<T> {
  primeFreePages(cluster.dir, cluster.hosts.length * file.size)
  const before = readGroups(groups)
  let result: T
  try {
    result = await method()
  } catch (err) {
    // One failed method (herd is being rewritten) must not keep the others of the point from running.
    result = fallback((err as Error)?.stack ?? String(err))
  }
  const killed = await settle(cluster)
  const used = cpuBetween(before, readGroups(groups))
  if (used) {
    const delivered = (cluster.hosts.length * file.size) / GiB
    result.cpu = { ...used, secondsPerGiB: (used.runnerSeconds + used.hostsSeconds) / delivered }
  }
  if (killed.length) result.error = `${result.error ? `${result.error}; ` : ''}killed what was still running on the hosts 10 s after: ${killed.join(', ')}`
  clearDestination(cluster)
  return result
}

function scpArgv(cluster: Cluster, host: Cluster['hosts'][number], file: string): string[] {
  return ['scp', '-q', '-F', cluster.sshConfigPath, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', file, `${host.alias}:${DESTINATION}`]
}

/** scp to one host after another, or one scp per host all at once; `budget` is one copy's time for the timeouts. */
export async function runScp(cluster: Cluster, groups: PointGroups | undefined, file: BenchFile, budget: number, parallel: boolean): Promise<ScpRun> {
  const n = cluster.hosts.length
  const t0 = performance.now()
  let failed = 0
  let timedOut = false
  const errors: string[] = []
  const one = async (h: Cluster['hosts'][number], timeoutMs: number) => {
    const r = await runCounted(cluster, groups, scpArgv(cluster, h, file.path), { timeoutMs })
    if (r.code !== 0) {
      failed++
      timedOut ||= r.timedOut
      errors.push(`${h.alias}: exit ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''} ${r.stderr.trim()}`)
    }
  }
  if (parallel) {
    const timeoutMs = Math.round((3 * n * budget + 60) * 1000)
    await Promise.all(cluster.hosts.map((h) => one(h, timeoutMs)))
  } else {
    for (const h of cluster.hosts) await one(h, Math.round((3 * budget + 60) * 1000))
  }
  const seconds = (performance.now() - t0) / 1000
  const verified = await countVerified(cluster, file.sha256)
  return { seconds, verified, failed, timedOut, error: errors.length ? errors.slice(0, 3).join('; ') : undefined }
}

/** The floor method (bench/floor.ts, run by bench/floor-run.ts), checked by sha256 like the others. */
export async function runFloorMethod(cluster: Cluster, groups: PointGroups | undefined, file: BenchFile, budget: number): Promise<FloorRun> {
  const timeoutMs = Math.round((2 * cluster.hosts.length * budget + 60) * 1000)
  const r = await runFloor(cluster, file.path, file.size, DESTINATION, groups, timeoutMs)
  const verified = await countVerified(cluster, file.sha256)
  const n = cluster.hosts.length
  const error = r.error ?? (verified === n ? undefined : `${verified}/${n} copies have the right sha256`)
  return { seconds: error ? undefined : r.seconds, verified, timedOut: r.timedOut, error }
}
