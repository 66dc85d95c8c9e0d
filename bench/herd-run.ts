// The benchmark's herd method: runs the committed CLI in the runner's namespace as a user would, and reads its report, its progress lines and the agents' memory.
import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { spawnSync } from 'node:child_process'
import type { Cluster } from '../test/support/cluster.js'
import { cliPath, repoRoot } from '../test/support/herd.js'
import type { Report } from '../src/core/report.js'
import { runnerNice, type PointGroups } from './cpu.js'
import { countVerified, DESTINATION, runCounted, type BenchFile } from './methods.js'
import type { HerdHostRow, HerdRun, HerdTimeline } from './model.js'
import { AgentSampler, machineBusy, readCpuTimes } from './sampler.js'
import { MiB } from './options.js'

/** Parses herd's non-TTY stderr: `[  2.0s] host: state` and `[  0.3s] phase: detail`. */
function timelineOf(stderr: string): { timeline: HerdTimeline; fetchingAt: Map<string, number>; doneAt: Map<string, number> } {
  const fetchingAt = new Map<string, number>()
  const doneAt = new Map<string, number>()
  const timeline: HerdTimeline = {}
  for (const line of stderr.split('\n')) {
    const m = /^\[\s*([\d.]+)s\] ([^:]+): (\S+)/.exec(line)
    if (!m) continue
    const at = Number(m[1])
    const [who, what] = [m[2]!, m[3]!]
    if (who === 'hashing') {
      const h = /hashed in ([\d.]+) s/.exec(line)
      if (h) timeline.hashSeconds = Number(h[1])
    } else if (who === 'swarm') timeline.swarmUpAt = at
    else if (what === 'fetching' && !fetchingAt.has(who)) fetchingAt.set(who, at)
    else if (what === 'done') doneAt.set(who, at)
  }
  const spread = (values: number[]) => {
    const s = [...values].sort((a, b) => a - b)
    return s.length ? { first: s[0], median: s[Math.floor((s.length - 1) / 2)], last: s[s.length - 1] } : {}
  }
  const f = spread([...fetchingAt.values()])
  const d = spread([...doneAt.values()])
  Object.assign(timeline, {
    firstFetchingAt: f.first,
    medianFetchingAt: f.median,
    lastFetchingAt: f.last,
    firstDoneAt: d.first,
    medianDoneAt: d.median,
    lastDoneAt: d.last,
  })
  return { timeline, fetchingAt, doneAt }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.floor((s.length - 1) / 2)] : undefined
}

function timeSha1sum(file: string, timeoutMs: number): number {
  const t0 = performance.now()
  const r = spawnSync('sha1sum', [file], { stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs })
  if (r.status !== 0) throw new Error(`sha1sum ${file}: ${r.error?.message ?? r.stderr?.toString().trim() ?? `exit ${r.status}`}`)
  return (performance.now() - t0) / 1000
}

/** herd `file` to every host of `list`; `budget` is one copy's time (the bound, on shaped links) for the timeout. */
export async function runHerd(cluster: Cluster, groups: PointGroups | undefined, file: BenchFile, list: string, work: string, logDir: string | undefined, budget: number): Promise<HerdRun> {
  const n = cluster.hosts.length
  const size = file.size
  const sha1sumSeconds = timeSha1sum(file.path, 600_000)
  const timeoutMs = Math.round(Math.max(180, 20 * budget + 5 * n + 60) * 1000)
  const timeFile = path.join(work, 'herd.time')
  fs.rmSync(timeFile, { force: true })
  // Every point measures a first push: no hashes kept from the case's earlier points (src/core/swarm/hash-cache.ts).
  fs.rmSync(path.join(cluster.home, '.cache', 'herd-action', 'hashes'), { recursive: true, force: true })
  // herd's own --timeout fires first, so a stuck run still ends with a report.
  const args = [file.path, DESTINATION, list, '--json', '--timeout', String(Math.round(timeoutMs / 1000 - 30))]
  if (logDir) args.push('--log-dir', logDir)
  const sampler = new AgentSampler(cluster.hosts.map((h) => h.netns))
  sampler.start()
  const cpuBefore = readCpuTimes()
  const t0 = performance.now()
  const r = await runCounted(cluster, groups, ['/usr/bin/time', '-o', timeFile, '-f', '%e %U %S %M', process.execPath, cliPath, ...args], {
    env: cluster.env(),
    timeoutMs,
    cwd: repoRoot,
    nice: runnerNice(n),
  })
  const seconds = (performance.now() - t0) / 1000
  const machine = machineBusy(cpuBefore, readCpuTimes())
  const agents = sampler.stop()
  if (logDir) fs.writeFileSync(path.join(logDir, 'herd.stderr'), r.stderr)

  let report: Report | undefined
  try {
    report = JSON.parse(r.stdout) as Report
  } catch {
    // no report: the error below carries stderr
  }
  // /usr/bin/time writes "Command exited with non-zero status N" before the figures; the figures are the last line.
  const timeLine = fs.existsSync(timeFile) ? fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '' : ''
  const tm = /^([\d.]+) ([\d.]+) ([\d.]+) (\d+)$/.exec(timeLine)
  const runnerCpuSeconds = tm ? Number(tm[2]) + Number(tm[3]) : undefined
  const runnerPeakRssMiB = tm ? (Number(tm[4]) * 1024) / MiB : undefined

  const peakByHost = new Map<number, number>()
  const cpuByHost = new Map<number, number>()
  let agentCpuSeconds = 0
  for (const a of agents) {
    peakByHost.set(a.host, Math.max(peakByHost.get(a.host) ?? 0, a.peakRssBytes))
    cpuByHost.set(a.host, (cpuByHost.get(a.host) ?? 0) + a.cpuSeconds)
    agentCpuSeconds += a.cpuSeconds
  }
  const indexOf = new Map(cluster.hosts.map((h) => [h.alias, h.index]))
  const peaks = [...peakByHost.values()]
  const verified = await countVerified(cluster, file.sha256)
  const { timeline, fetchingAt, doneAt } = timelineOf(r.stderr)
  const hosts: HerdHostRow[] = (report?.hosts ?? []).map((h) => ({
    host: h.host,
    status: h.status,
    seconds: h.seconds,
    downloaded: h.downloaded,
    fromRunner: h.fromRunner,
    fetchingAt: fetchingAt.get(h.host),
    doneAt: doneAt.get(h.host),
    agentPeakRssMiB: peakByHost.has(indexOf.get(h.host) ?? -1) ? peakByHost.get(indexOf.get(h.host)!)! / MiB : undefined,
    agentCpuSeconds: cpuByHost.get(indexOf.get(h.host) ?? -1),
  }))
  const ok = r.code === 0 && verified === n
  return {
    exitCode: r.code,
    timedOut: r.timedOut,
    seconds,
    reportSeconds: report?.seconds,
    verified,
    bytesFromRunner: report?.bytesFromRunner,
    runnerCopies: report ? report.bytesFromRunner / size : undefined,
    runnerPeakRssMiB,
    runnerCpuSeconds,
    agentPeakRssMiB: peaks.length ? Math.max(...peaks) / MiB : undefined,
    agentMedianPeakRssMiB: peaks.length ? median(peaks)! / MiB : undefined,
    agentCpuSeconds,
    agentsSeen: agents.length,
    machineBusy: machine?.busy,
    machineKernel: machine?.kernel,
    hashSeconds: timeline.hashSeconds,
    sha1sumSeconds,
    timeline,
    hosts,
    error: ok ? undefined : `exit ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}; ${verified}/${n} verified; stderr: ${r.stderr.trim().split('\n').slice(-8).join(' | ')}`,
  }
}

/** What a herd run that threw (before or instead of a report) leaves in the results. */
export function failedHerd(error: string): HerdRun {
  return { exitCode: null, timedOut: false, seconds: Number.NaN, verified: 0, agentsSeen: 0, timeline: {}, hosts: [], error }
}
