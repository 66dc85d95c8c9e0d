// Samples the agents' peak memory and CPU time from /proc while a push runs (agents live in the hosts' network namespaces).
import fs from 'node:fs'
import { execFileSync } from 'node:child_process'

/** What one agent process used, as last seen. */
export interface AgentUsage {
  pid: number
  /** Index of the host (network namespace) it ran in. */
  host: number
  /** VmHWM: the process's peak resident set, bytes. */
  peakRssBytes: number
  /** utime + stime, seconds, at the last sample (at most one interval before it exited). */
  cpuSeconds: number
}

/** The agent starts as `node -e … agent-<hash>.mjs …` and then renames itself `herd-agent` (process.title). */
const AGENT_CMDLINE = /agent-[0-9a-f]+\.mjs|^herd-agent/

/** Clock ticks per second, for /proc/<pid>/stat's utime and stime. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100
  } catch {
    return 100
  }
})()

/** The network namespace identity (dev:inode) of a named netns, as /proc/<pid>/ns/net shows it. */
function netnsKey(name: string): string | undefined {
  try {
    const st = fs.statSync(`/run/netns/${name}`)
    return `${st.dev}:${st.ino}`
  } catch {
    return undefined
  }
}

/**
 * Every `intervalMs`, finds the processes whose command line names the agent (`agent-<hash>.mjs`, or
 * `herd-agent` once it has set its title) in
 * the given namespaces and records their VmHWM and CPU time. One /proc scan per tick for all hosts.
 */
export class AgentSampler {
  private readonly hostByNetns = new Map<string, number>()
  private readonly seen = new Map<number, AgentUsage>()
  private timer: NodeJS.Timeout | undefined

  constructor(hostNetns: string[], private readonly intervalMs = 200) {
    hostNetns.forEach((name, index) => {
      const key = netnsKey(name)
      if (key) this.hostByNetns.set(key, index)
    })
  }

  start(): void {
    this.sample()
    this.timer = setInterval(() => this.sample(), this.intervalMs)
  }

  /** Stops sampling (one last sample first) and returns every agent process seen. */
  stop(): AgentUsage[] {
    clearInterval(this.timer)
    this.sample()
    return [...this.seen.values()]
  }

  private sample(): void {
    let entries: string[]
    try {
      entries = fs.readdirSync('/proc')
    } catch {
      return
    }
    for (const ent of entries) {
      if (!/^\d+$/.test(ent)) continue
      try {
        const st = fs.statSync(`/proc/${ent}/ns/net`)
        const host = this.hostByNetns.get(`${st.dev}:${st.ino}`)
        if (host === undefined) continue
        const cmdline = fs.readFileSync(`/proc/${ent}/cmdline`, 'utf8')
        if (!AGENT_CMDLINE.test(cmdline)) continue
        const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${ent}/status`, 'utf8'))
        // Fields after the command name (which may hold spaces) start at state: utime and stime are 14 and 15.
        const stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8')
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        const ticks = Number(rest[11]) + Number(rest[12])
        const pid = Number(ent)
        const prev = this.seen.get(pid)
        this.seen.set(pid, {
          pid,
          host,
          peakRssBytes: Math.max(prev?.peakRssBytes ?? 0, hwm ? Number(hwm[1]) * 1024 : 0),
          cpuSeconds: Math.max(prev?.cpuSeconds ?? 0, ticks / CLK_TCK),
        })
      } catch {
        // exited meanwhile, or a zombie without status
      }
    }
  }
}

/** The whole machine's CPU time from /proc/stat's first line, in clock ticks. */
export interface CpuTimes {
  total: number
  idle: number
  /** system + irq + softirq: the kernel's share, which carries the shaped links' traffic. */
  kernel: number
}

export function readCpuTimes(): CpuTimes | undefined {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!
    // cpu user nice system idle iowait irq softirq steal ...
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[]
    return { total: user! + nice! + system! + idle! + iowait! + irq! + softirq! + (steal ?? 0), idle: idle! + iowait!, kernel: system! + irq! + softirq! }
  } catch {
    return undefined
  }
}

/** Share of all cores busy between two readings, and the kernel's part of it (0..1). */
export function machineBusy(from: CpuTimes | undefined, to: CpuTimes | undefined): { busy: number; kernel: number } | undefined {
  if (!from || !to || to.total <= from.total) return undefined
  const total = to.total - from.total
  return { busy: 1 - (to.idle - from.idle) / total, kernel: (to.kernel - from.kernel) / total }
}
