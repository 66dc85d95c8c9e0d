// CPU accounting for the benchmark: one cgroup v2 per host and one for the runner, so every process of a method (sshd and its children, agents, scp, floor) is counted.
//
// A cgroup counts the CPU time of every task in it, and children inherit their parent's cgroup, so
// putting each host's sshd listener into its host's group once counts every session, shell, scp and
// agent it ever starts, even after they detach. No controller is enabled: cgroup v2's cpu.stat
// (usage_usec) is kept for every group by the kernel itself. Kernel work done in softirq (packets) is
// charged to whatever task was running, which here is mostly the sender of the same run; work left to
// ksoftirqd is in no group of ours.
import fs from 'node:fs'
import path from 'node:path'

const CGROUP2_MAGIC = 0x63677270
/** Benchmark-owned parents: herd-bench-<pid> under the cgroup2 mount. */
const PREFIX = 'herd-bench-'

/** CPU seconds used in the runner's group and in all hosts' groups between two readings. */
export interface CpuDelta {
  runnerSeconds: number
  hostsSeconds: number
}

/** The cgroups of one benchmark point (one cluster): the runner's and one per host. */
export interface PointGroups {
  runner: string
  hosts: string[]
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

function isCgroup2(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === CGROUP2_MAGIC
  } catch {
    return false
  }
}

/** rmdir with retries: a group stays busy for a moment after its last process was killed. */
function removeGroup(dir: string, waitMs = 3000): boolean {
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      fs.rmdirSync(dir)
      return true
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return true
      if (code !== 'EBUSY' || Date.now() >= deadline) return false
      sleepSync(50)
    }
  }
}

/** Removes a group and every group under it, deepest first. */
function removeTree(dir: string, waitMs = 3000): boolean {
  let entries: fs.Dirent[] = []
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true })
  } catch {
    return true
  }
  let ok = true
  for (const e of entries) if (e.isDirectory()) ok = removeTree(path.join(dir, e.name), waitMs) && ok
  return removeGroup(dir, waitMs) && ok
}

export class CpuAccounting {
  private constructor(
    /** herd-bench-<pid> under the cgroup2 mount. */
    readonly parent: string,
  ) {}

  /**
   * Uses /sys/fs/cgroup when it is cgroup2, else /sys/fs/cgroup/unified (systemd's hybrid layout); answers
   * why not when neither is a writable cgroup2 with cpu.stat.
   */
  static open(): CpuAccounting | { why: string } {
    const mount = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'].find(isCgroup2)
    if (!mount) return { why: 'no cgroup2 at /sys/fs/cgroup or /sys/fs/cgroup/unified' }
    removeStale(mount)
    const parent = path.join(mount, `${PREFIX}${process.pid}`)
    try {
      fs.mkdirSync(parent)
      if (!fs.existsSync(path.join(parent, 'cpu.stat'))) throw new Error('no cpu.stat in a new group')
    } catch (err) {
      removeGroup(parent, 0)
      return { why: `cannot use ${mount}: ${(err as Error).message}` }
    }
    return new CpuAccounting(parent)
  }

  private exitWatched = false
  /** Removes every group at exit or on a signal; call after the first cluster exists, so its handlers (which kill its processes) run first. */
  watchExit(): void {
    if (this.exitWatched) return
    this.exitWatched = true
    process.on('exit', () => this.removeAll())
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const onSignal = () => {
        this.removeAll()
        process.removeListener(sig, onSignal)
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
      }
      process.on(sig, onSignal)
    }
  }

  /** Creates the runner's group and one per host for one point. */
  point(name: string, hosts: number): PointGroups {
    const dir = path.join(this.parent, name)
    fs.mkdirSync(dir)
    const groups = { runner: path.join(dir, 'runner'), hosts: Array.from({ length: hosts }, (_, i) => path.join(dir, `h${i}`)) }
    for (const g of [groups.runner, ...groups.hosts]) fs.mkdirSync(g)
    return groups
  }

  /** Removes a point's groups (its processes must be gone); false if some stayed busy. */
  removePoint(groups: PointGroups): boolean {
    return removeTree(path.dirname(groups.runner))
  }

  removeAll(): boolean {
    return removeTree(this.parent)
  }
}

/** Moves a running process (all its threads) into a group; its future children follow. */
export function moveInto(group: string, pid: number): void {
  fs.writeFileSync(path.join(group, 'cgroup.procs'), `${pid}\n`)
}

/**
 * The autogroup nice that gives one runner-side process the CPU weight of `hosts` hosts (weight × 1.25
 * per step, -20 at the most). Linux shares a busy CPU equally between sessions (autogroups), and every
 * host's sshd session is one: on this one machine a runner serving 200 hosts got 1/201 of it, and its
 * seeder's handshakes, its tracker's answers and its pings to the agents timed out (hosts failed with
 * "no word from the runner"). A real runner has a machine of its own; parallel scp runs one session per
 * host, so it had N shares already. herd's CLI and the floor's sender get this; scp keeps its N sessions.
 */
export function runnerNice(hosts: number): number {
  return -Math.min(20, Math.round(Math.log(Math.max(1, hosts)) / Math.log(1.25)))
}

/**
 * argv that first joins the group (and sets its session's autogroup `nice`, when given), then execs argv,
 * so the process and all its children are counted from their first instruction. It must run in this
 * machine's mount namespace: `ip netns exec` mounts a fresh /sys, without the cgroup mounts, so argv is
 * the one that enters a namespace (ip netns exec, nsenter). The process must lead its own session (spawned
 * detached) for the nice to be its own.
 */
export function inGroup(group: string | undefined, argv: string[], nice = 0): string[] {
  const steps = [...(group ? ['echo $$ > "$0/cgroup.procs"'] : []), ...(nice ? [`{ { echo ${nice} > /proc/$$/autogroup; } 2>/dev/null || true; }`] : [])]
  if (steps.length === 0) return argv
  return ['sh', '-c', `${steps.join(' && ')} && exec "$@"`, group ?? '-', ...argv]
}

/** usage_usec of a group, in seconds. */
function usage(group: string): number {
  const m = /^usage_usec (\d+)$/m.exec(fs.readFileSync(path.join(group, 'cpu.stat'), 'utf8'))
  if (!m) throw new Error(`${group}/cpu.stat has no usage_usec`)
  return Number(m[1]) / 1e6
}

/** A reading of a point's groups, to subtract from a later one. */
export function readGroups(groups: PointGroups | undefined): CpuDelta | undefined {
  if (!groups) return undefined
  try {
    return { runnerSeconds: usage(groups.runner), hostsSeconds: groups.hosts.reduce((s, g) => s + usage(g), 0) }
  } catch {
    return undefined
  }
}

export function cpuBetween(before: CpuDelta | undefined, after: CpuDelta | undefined): CpuDelta | undefined {
  if (!before || !after) return undefined
  return { runnerSeconds: after.runnerSeconds - before.runnerSeconds, hostsSeconds: after.hostsSeconds - before.hostsSeconds }
}

/** Parents left by a benchmark that died (its pid is gone): removed if their processes are gone too. */
function removeStale(mount: string): void {
  let names: string[] = []
  try {
    names = fs.readdirSync(mount)
  } catch {
    return
  }
  for (const name of names) {
    const m = new RegExp(`^${PREFIX}(\\d+)$`).exec(name)
    if (!m || Number(m[1]) === process.pid) continue
    if (fs.existsSync(`/proc/${m[1]}`)) continue
    removeTree(path.join(mount, name), 0)
  }
}
