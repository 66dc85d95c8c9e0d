// The benchmark's result model: what bench/results/latest.json holds, shared by the runner and the renderers.

/** One benchmark case: a cluster shape and a file size, run for each host count. */
export interface CaseSpec {
  name: string
  /** One line for humans: what the case is for. */
  purpose: string
  hosts: number[]
  /** tbf rate of every link; absent: links not shaped at all (the machine's CPU sets the pace). */
  rateMbit?: number
  sizeMiB: number
  /** Run the scp baselines (sequential and parallel). */
  scp: boolean
  /** With scp: false skips the sequential one (it needs about N times the parallel one's bytes through one ssh at a time). */
  sequentialScp?: boolean
  /** Why scp is off, when it is. */
  scpNote?: string
}

/** When each host reached each state, seconds since herd's renderer started (from its stderr lines). */
export interface HerdTimeline {
  /** Hashing finished (the 'hashing: … hashed in X s' line's own figure). */
  hashSeconds?: number
  /** Tracker and seeder listening. */
  swarmUpAt?: number
  /** First / median / last host that started fetching (agent running, swarm joined). */
  firstFetchingAt?: number
  medianFetchingAt?: number
  lastFetchingAt?: number
  /** First / median / last host that had the verified file in place. */
  firstDoneAt?: number
  medianDoneAt?: number
  lastDoneAt?: number
}

export interface HerdHostRow {
  host: string
  status: string
  seconds: number
  downloaded: number
  fromRunner: number
  fetchingAt?: number
  doneAt?: number
  /** This host's agent process(es): largest VmHWM, and CPU seconds summed over attempts. */
  agentPeakRssMiB?: number
  agentCpuSeconds?: number
}

/**
 * CPU time of one method, counted in cgroups: the runner's (every process the method started there) and
 * the hosts' (each host's sshd and everything it started: sessions, scp, agents; the floor receivers).
 */
export interface CpuUse {
  runnerSeconds: number
  hostsSeconds: number
  /** (runner + hosts) / GiB delivered (N × file size). */
  secondsPerGiB: number
}

export interface HerdRun {
  exitCode: number | null
  timedOut: boolean
  /** Wall time of the CLI process, node start to exit: what a user waits. */
  seconds: number
  /** The report's own `seconds` (from distribute() start to the report). */
  reportSeconds?: number
  /** Hosts whose copy has the right sha256. */
  verified: number
  bytesFromRunner?: number
  /** bytesFromRunner in copies of the file. */
  runnerCopies?: number
  runnerPeakRssMiB?: number
  /** user + system of the CLI from /usr/bin/time (also in `cpu`, which counts every process). */
  runnerCpuSeconds?: number
  /** Largest VmHWM of any agent, and the median over hosts. */
  agentPeakRssMiB?: number
  agentMedianPeakRssMiB?: number
  /** Every agent's utime + stime, last /proc sample (also in `cpu`, which counts every process). */
  agentCpuSeconds?: number
  agentsSeen: number
  /** Every process of the push on the runner and the hosts (cgroups); absent when cgroups are unavailable. */
  cpu?: CpuUse
  /** Results files from before the cgroups only: (runner + agents) / GiB delivered, without sshd and the sessions. */
  cpuSecondsPerGiB?: number
  /** Share (0..1) of all the machine's cores busy while herd ran, and the kernel's part (system, irq, softirq). */
  machineBusy?: number
  machineKernel?: number
  /** herd's hashing time from its phase line (0.01 s resolution) and sha1sum's on the same file. */
  hashSeconds?: number
  sha1sumSeconds?: number
  timeline: HerdTimeline
  hosts: HerdHostRow[]
  /** Last lines of herd's stderr when something went wrong. */
  error?: string
}

export interface ScpRun {
  seconds: number
  verified: number
  failed: number
  timedOut: boolean
  cpu?: CpuUse
  error?: string
}

/** The ideal push over plain TCP (bench/floor.ts): the runner sends slice k to host k, which forwards it to every other host. */
export interface FloorRun {
  /** From starting the runner's sender to the last host having written and closed its file (no fsync); absent when it failed. */
  seconds?: number
  verified: number
  timedOut: boolean
  cpu?: CpuUse
  error?: string
}

export interface CaseRun {
  case: string
  hosts: number
  /** Absent: unshaped links. */
  rateMbit?: number
  sizeBytes: number
  /** size × 8 / nominal tbf rate: one copy's time on one link; absent on unshaped links (no rate to divide by). */
  boundSeconds?: number
  /** N × bound: what any method that sends every copy from the runner needs at least. */
  runnerLinkSeconds?: number
  herd: HerdRun
  floor?: FloorRun
  scpSequential?: ScpRun
  scpParallel?: ScpRun
  ratios: { herdToBound?: number; herdToFloor?: number; herdToParallelScp?: number; herdToSequentialScp?: number; hashToSha1sum?: number }
  /** 1-minute load average just before the case ran: other work on the machine shows here. */
  loadBefore: number
  startedAt: string
}

export interface Machine {
  nproc: number
  cpuModel: string
  memoryGiB: number
  kernel: string
  /** The runner's node (runs the benchmark and the CLI). */
  node: string
  /** The node the agents run (what a root login finds on the hosts). */
  hostNode?: string
  openssh: string
  hostname: string
}

export interface BenchResults {
  tool: 'herd-action swarm benchmark'
  startedAt: string
  finishedAt: string
  machine: Machine
  /** How to read the figures (repeated in the JSON so it stands alone). */
  notes: string[]
  /** How CPU was counted (cgroup v2 under which mount), or `n/a: why`. */
  cpuAccounting?: string
  cases: CaseSpec[]
  runs: CaseRun[]
}
