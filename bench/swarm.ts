// The swarm benchmark: pushes a random file to local sshd hosts on shaped links with herd, with scp one
// host after another and with scp to all hosts at once; verifies every copy, prints the ratios to the
// physical bound, and writes JSON, a Markdown table and an SVG chart.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { spawnSync } from 'node:child_process'
import { canRunCluster, startCluster, type Cluster } from '../test/support/cluster.js'
import { cliPath, hostsFile, randomFile, repoRoot } from '../test/support/herd.js'
import type { Report } from '../src/core/report.js'
import { AgentSampler, machineBusy, readCpuTimes } from './sampler.js'
import { markdownTable, svgChart } from './render.js'
import type { BenchResults, CaseRun, CaseSpec, HerdHostRow, HerdRun, HerdTimeline, Machine, ScpRun } from './model.js'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
/** Where every method writes on the hosts (each host's /srv is its own). */
const DESTINATION = '/srv/bench.bin'

const DEFAULT_CASES: CaseSpec[] = [
  { name: 'fleet', purpose: 'herd against scp at a common link speed', hosts: [4, 8, 16], rateMbit: 100, sizeMiB: 200, scp: true },
  {
    name: 'sweep',
    purpose: 'scaling with N at a fifth of the fleet case\'s link rate, so the machine carries fewer bytes per second (at N = 32 its 2 cores are busy again)',
    hosts: [4, 8, 16, 32],
    rateMbit: 20,
    sizeMiB: 50,
    scp: false,
    scpNote: 'scp not run by default (--scp runs it): the runner\'s link carries every copy, so each scp method needs at least N × bound',
  },
  { name: 'memory', purpose: 'memory with a 2 GiB file', hosts: [4], rateMbit: 1000, sizeMiB: 2048, scp: false, scpNote: 'this case measures memory' },
]
const ALIASES: Record<string, string> = { a: 'fleet', b: 'sweep', c: 'memory' }

const USAGE = `usage: npm run bench -- [options]
  --case NAMES      fleet (A), sweep (B), memory (C); comma-separated (default: all three)
  --hosts 4,8       host counts (with --case: override that case's; alone: one custom case)
  --rate MBIT       link rate in Mbit/s (tbf, every link, both directions)
  --size-mib MIB    file size
  --scp / --no-scp  run / skip the scp baselines in every selected case
  --out FILE        results JSON (default bench/results/latest.json); the Markdown table goes beside it (.md)
  --chart FILE      SVG chart (default: chart.svg beside --out)
  --log-dir DIR     keep herd's stderr and per-host logs under DIR/<case>-n<N>/
  --render FILE     only redraw the Markdown table and the chart from a results JSON (beside it)`

interface Options {
  machine: Machine
  cases: CaseSpec[]
  out: string
  chart: string
  logDir?: string
  /** Redraw from this results JSON instead of running. */
  render?: string
}

function parseOptions(argv: string[]): Options {
  const values = new Map<string, string>()
  let scp: boolean | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE)
      process.exit(0)
    } else if (arg === '--scp' || arg === '--no-scp') scp = arg === '--scp'
    else if (['--case', '--hosts', '--rate', '--size-mib', '--out', '--chart', '--log-dir', '--render'].includes(arg)) {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`)
      values.set(arg, v)
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`)
  }
  const positive = (name: string, v: string) => {
    const n = Number(v)
    if (!(n > 0) || !Number.isFinite(n)) throw new Error(`${name} must be a positive number, got ${v}`)
    return n
  }
  const hosts = values.get('--hosts')?.split(',').map((v) => {
    const n = positive('--hosts', v)
    if (!Number.isInteger(n) || n > 200) throw new Error(`--hosts takes whole numbers 1..200, got ${v}`)
    return n
  })
  const rate = values.has('--rate') ? positive('--rate', values.get('--rate')!) : undefined
  const size = values.has('--size-mib') ? positive('--size-mib', values.get('--size-mib')!) : undefined
  let cases: CaseSpec[]
  if (values.has('--case')) {
    cases = values.get('--case')!.split(',').map((raw) => {
      const name = ALIASES[raw.toLowerCase()] ?? raw.toLowerCase()
      const found = DEFAULT_CASES.find((c) => c.name === name)
      if (!found) throw new Error(`--case: no case ${raw}; choose fleet, sweep or memory`)
      return { ...found }
    })
  } else if (hosts || rate || size) {
    cases = [{ ...DEFAULT_CASES[0]!, name: 'custom', purpose: 'custom case from the command line' }]
  } else cases = DEFAULT_CASES.map((c) => ({ ...c }))
  for (const c of cases) {
    if (hosts) c.hosts = hosts
    if (rate) c.rateMbit = rate
    if (size) c.sizeMiB = size
    if (scp !== undefined) {
      c.scp = scp
      c.scpNote = scp ? undefined : 'scp not run (--no-scp)'
    }
  }
  const render = values.has('--render') ? path.resolve(values.get('--render')!) : undefined
  const out = path.resolve(values.get('--out') ?? render ?? path.join(repoRoot, 'bench', 'results', 'latest.json'))
  const chart = path.resolve(values.get('--chart') ?? path.join(path.dirname(out), 'chart.svg'))
  const logDir = values.has('--log-dir') ? path.resolve(values.get('--log-dir')!) : undefined
  return { machine: describeMachine(), cases, out, chart, logDir, render }
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 })
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? ''
}

function describeMachine(): Machine {
  return {
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: os.totalmem() / GiB,
    kernel: os.release(),
    node: process.version,
    openssh: firstLine('ssh', ['-V']),
    hostname: os.hostname(),
  }
}

const NOTES = [
  'One run per point (no repetition); the 1-minute load average before each case is in the JSON: other work on the machine shows there as noise.',
  'bound = file size × 8 / link rate, with the nominal tbf rate given to tc (every link, both directions, the runner\'s included). TCP/IP headers take about 5 % of it, so even one perfect copy lands a little above the bound.',
  'herd s = wall time of the `herd … --json` process in the runner namespace: node start, hashing, SSH, agent upload, transfer, verification and rename on every host, release of the agents.',
  'parallel scp = one OpenSSH `scp` per host, all at once (what popular scp actions do); sequential scp = one after another. Both need at least N × bound: the runner\'s link carries every copy.',
  'runner sent = bytes the runner\'s seeder uploaded (the report\'s bytesFromRunner) in copies of the file; the agent upload over SSH (about 1.8 MB per host) is not in it.',
  'runner peak RSS: /usr/bin/time %M of the CLI process. agent peak RSS: the largest VmHWM of any agent process, sampled from /proc every 200 ms.',
  'CPU s / GiB = (runner user+sys from /usr/bin/time + every agent\'s utime+stime, last /proc sample, at most 200 ms before it exited) / GiB delivered (N × file size). All processes share this machine\'s cores.',
  'machine CPU busy = share of all cores not idle while herd ran (from /proc/stat), every process on the machine included (sshd, the shaped links\' packet work in the kernel); in brackets the kernel\'s part (system, irq, softirq). Near 100 % the machine, not the links, sets herd\'s time.',
  'hashing = herd\'s own phase line (`hashed in X s`: SHA-1 of every piece and SHA-256 of the file in a worker thread, 0.01 s resolution) against `sha1sum` of the same file, both reading from the page cache.',
]

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

async function countVerified(cluster: Cluster, sha256: string): Promise<number> {
  const sums = await Promise.all(cluster.hosts.map((h) => cluster.sha256On(h, DESTINATION)))
  return sums.filter((s) => s === sha256).length
}

/** Removes the destination (and any temporary file beside it) on every host, between methods. */
function clearDestination(cluster: Cluster): void {
  const base = path.posix.basename(DESTINATION)
  for (const h of cluster.hosts) {
    const dir = cluster.hostPath(h, path.posix.dirname(DESTINATION))
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      if (name === base || name.startsWith(`.${base}`)) fs.rmSync(path.join(dir, name), { force: true })
    }
  }
}

function timeSha1sum(file: string, timeoutMs: number): number {
  const t0 = performance.now()
  const r = spawnSync('sha1sum', [file], { stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs })
  if (r.status !== 0) throw new Error(`sha1sum ${file}: ${r.error?.message ?? r.stderr?.toString().trim() ?? `exit ${r.status}`}`)
  return (performance.now() - t0) / 1000
}

async function runHerd(cluster: Cluster, file: { path: string; sha256: string }, list: string, spec: CaseSpec, work: string, logDir: string | undefined, bound: number): Promise<HerdRun> {
  const n = cluster.hosts.length
  const size = spec.sizeMiB * MiB
  const sha1sumSeconds = timeSha1sum(file.path, 600_000)
  const timeoutMs = Math.round(Math.max(180, 20 * bound + 5 * n + 60) * 1000)
  const timeFile = path.join(work, 'herd.time')
  fs.rmSync(timeFile, { force: true })
  // herd's own --timeout fires first, so a stuck run still ends with a report.
  const args = [file.path, DESTINATION, list, '--json', '--timeout', String(Math.round(timeoutMs / 1000 - 30))]
  if (logDir) args.push('--log-dir', logDir)
  const sampler = new AgentSampler(cluster.hosts.map((h) => h.netns))
  sampler.start()
  const cpuBefore = readCpuTimes()
  const t0 = performance.now()
  const r = await cluster.runInRunner(['/usr/bin/time', '-o', timeFile, '-f', '%e %U %S %M', process.execPath, cliPath, ...args], {
    env: cluster.env(),
    timeoutMs,
    cwd: repoRoot,
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
  const delivered = (n * size) / GiB
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
    cpuSecondsPerGiB: runnerCpuSeconds !== undefined ? (runnerCpuSeconds + agentCpuSeconds) / delivered : undefined,
    machineBusy: machine?.busy,
    machineKernel: machine?.kernel,
    hashSeconds: timeline.hashSeconds,
    sha1sumSeconds,
    timeline,
    hosts,
    error: ok ? undefined : `exit ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}; ${verified}/${n} verified; stderr: ${r.stderr.trim().split('\n').slice(-8).join(' | ')}`,
  }
}

function scpArgv(cluster: Cluster, host: Cluster['hosts'][number], file: string): string[] {
  return ['scp', '-q', '-F', cluster.sshConfigPath, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', file, `${host.alias}:${DESTINATION}`]
}

async function runScp(cluster: Cluster, file: { path: string; sha256: string }, bound: number, parallel: boolean): Promise<ScpRun> {
  const n = cluster.hosts.length
  const t0 = performance.now()
  let failed = 0
  let timedOut = false
  const errors: string[] = []
  const one = async (h: Cluster['hosts'][number], timeoutMs: number) => {
    const r = await cluster.runInRunner(scpArgv(cluster, h, file.path), { timeoutMs })
    if (r.code !== 0) {
      failed++
      timedOut ||= r.timedOut
      errors.push(`${h.alias}: exit ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''} ${r.stderr.trim()}`)
    }
  }
  if (parallel) {
    const timeoutMs = Math.round((3 * n * bound + 60) * 1000)
    await Promise.all(cluster.hosts.map((h) => one(h, timeoutMs)))
  } else {
    for (const h of cluster.hosts) await one(h, Math.round((3 * bound + 60) * 1000))
  }
  const seconds = (performance.now() - t0) / 1000
  const verified = await countVerified(cluster, file.sha256)
  return { seconds, verified, failed, timedOut, error: errors.length ? errors.slice(0, 3).join('; ') : undefined }
}

const f1 = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d))

function printRun(run: CaseRun): void {
  const h = run.herd
  const t = h.timeline
  const size = run.sizeBytes >= GiB ? `${f1(run.sizeBytes / GiB)} GiB` : `${f1(run.sizeBytes / MiB, 0)} MiB`
  console.log(`\n== ${run.case}: N=${run.hosts}, ${run.rateMbit} Mbit/s links (nominal tbf rate), ${size}; bound ${f1(run.boundSeconds)} s, N × bound ${f1(run.runnerLinkSeconds)} s (load before ${f1(run.loadBefore, 2)})`)
  console.log(
    `  herd            ${f1(h.seconds).padStart(7)} s  exit ${h.exitCode}, ${h.verified}/${run.hosts} sha256 ok; report ${f1(h.reportSeconds)} s; ` +
      `hashed ${f1(t.hashSeconds)} s, hosts fetching ${f1(t.firstFetchingAt)}–${f1(t.lastFetchingAt)} s, done ${f1(t.firstDoneAt)}–${f1(t.lastDoneAt)} s`,
  )
  if (h.error) console.log(`  herd FAILED: ${h.error}`)
  for (const [label, s] of [['scp sequential', run.scpSequential], ['scp parallel', run.scpParallel]] as const) {
    if (s) console.log(`  ${label.padEnd(15)} ${f1(s.seconds).padStart(7)} s  ${s.verified}/${run.hosts} sha256 ok${s.error ? `; ${s.error}` : ''}`)
  }
  const r = run.ratios
  console.log(`  ratios: herd/bound ${f1(r.herdToBound, 2)}, herd/parallel scp ${f1(r.herdToParallelScp, 2)}, herd/sequential scp ${f1(r.herdToSequentialScp, 2)}`)
  console.log(
    `  runner uploaded ${f1(h.runnerCopies, 2)} copies; peak RSS runner ${f1(h.runnerPeakRssMiB, 0)} MiB, agent ${f1(h.agentPeakRssMiB, 0)} MiB ` +
      `(median ${f1(h.agentMedianPeakRssMiB, 0)}, ${h.agentsSeen} agent processes seen); CPU ${f1(h.cpuSecondsPerGiB)} s per GiB delivered ` +
      `(runner ${f1(h.runnerCpuSeconds)} s + agents ${f1(h.agentCpuSeconds)} s); machine CPU ${h.machineBusy === undefined ? '–' : Math.round(h.machineBusy * 100)} % busy ` +
      `(kernel ${h.machineKernel === undefined ? '–' : Math.round(h.machineKernel * 100)} %)`,
  )
  console.log(`  hashing: herd ${h.hashSeconds ? h.hashSeconds.toFixed(2) : '< 0.01'} s (its phase line, 0.01 s resolution), sha1sum ${f1(h.sha1sumSeconds, 2)} s, herd/sha1sum ${f1(r.hashToSha1sum, 2)}`)
}

async function runCase(spec: CaseSpec, n: number, file: { path: string; sha256: string }, work: string, opts: Options): Promise<CaseRun> {
  const size = spec.sizeMiB * MiB
  const bound = (size * 8) / (spec.rateMbit * 1e6)
  const loadBefore = os.loadavg()[0]!
  const startedAt = new Date().toISOString()
  const cluster = await startCluster({ hosts: n, rateMbit: spec.rateMbit })
  try {
    // The agents run the node that a root login's PATH finds on the hosts, as for a user.
    if (!opts.machine.hostNode) {
      opts.machine.hostNode = (await cluster.shOn(cluster.hosts[0]!, 'node --version', 10_000)).stdout.trim() || 'unknown'
      console.log(`bench: the agents run node ${opts.machine.hostNode} (what a root login's PATH finds on the hosts)`)
    }
    const list = hostsFile(work, cluster.hosts)
    const logDir = opts.logDir ? path.join(opts.logDir, `${spec.name}-n${n}`) : undefined
    if (logDir) fs.mkdirSync(logDir, { recursive: true })
    const herd = await runHerd(cluster, file, list, spec, work, logDir, bound)
    clearDestination(cluster)
    let scpSequential: ScpRun | undefined
    let scpParallel: ScpRun | undefined
    if (spec.scp) {
      scpSequential = await runScp(cluster, file, bound, false)
      clearDestination(cluster)
      scpParallel = await runScp(cluster, file, bound, true)
      clearDestination(cluster)
    }
    const good = (s: ScpRun | undefined) => (s && s.verified === n ? s.seconds : undefined)
    const par = good(scpParallel)
    const seq = good(scpSequential)
    return {
      case: spec.name,
      hosts: n,
      rateMbit: spec.rateMbit,
      sizeBytes: size,
      boundSeconds: bound,
      runnerLinkSeconds: n * bound,
      herd,
      scpSequential,
      scpParallel,
      ratios: {
        herdToBound: herd.seconds / bound,
        herdToParallelScp: par ? herd.seconds / par : undefined,
        herdToSequentialScp: seq ? herd.seconds / seq : undefined,
        // herd prints its hashing time to 0.1 s: below that the ratio says nothing.
        hashToSha1sum: herd.hashSeconds ? herd.hashSeconds / herd.sha1sumSeconds : undefined,
      },
      loadBefore,
      startedAt,
    }
  } finally {
    await cluster.destroy()
  }
}

function writeOutputs(results: BenchResults, opts: Options): void {
  fs.mkdirSync(path.dirname(opts.out), { recursive: true })
  fs.writeFileSync(opts.out, JSON.stringify(results, null, 2) + '\n')
  fs.writeFileSync(opts.out.replace(/\.json$/, '') + '.md', markdownTable(results))
  if (results.runs.length) {
    fs.mkdirSync(path.dirname(opts.chart), { recursive: true })
    fs.writeFileSync(opts.chart, svgChart(results))
  }
}

async function main(): Promise<number> {
  let opts: Options
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`)
    return 2
  }
  if (opts.render) {
    const results = JSON.parse(fs.readFileSync(opts.render, 'utf8')) as BenchResults
    results.notes = NOTES
    writeOutputs(results, opts)
    console.log(markdownTable(results))
    return 0
  }
  const can = canRunCluster()
  if (!can.ok) {
    console.error(`bench: cannot build the local cluster: ${can.why}`)
    return 2
  }
  if (!fs.existsSync(cliPath)) {
    console.error(`bench: ${cliPath} is missing; run npm run build`)
    return 2
  }
  const machine = opts.machine
  const results: BenchResults = {
    tool: 'herd-action swarm benchmark',
    startedAt: new Date().toISOString(),
    finishedAt: '',
    machine,
    notes: NOTES,
    cases: opts.cases,
    runs: [],
  }
  console.log(`bench: ${machine.nproc} CPUs (${machine.cpuModel}), ${f1(machine.memoryGiB)} GiB RAM, Linux ${machine.kernel}, node ${machine.node} (runner), ${machine.openssh}`)
  for (const c of opts.cases) {
    const scpSeconds = c.hosts.reduce((sum, n) => sum + (n * c.sizeMiB * MiB * 8) / (c.rateMbit * 1e6), 0)
    if (!c.scp) c.scpNote = `${c.scpNote ?? 'scp not run'} (≥ ${Math.round(scpSeconds)} s per scp method for this case)`
    console.log(`bench: case ${c.name} (${c.purpose}): N = ${c.hosts.join(', ')} at ${c.rateMbit} Mbit/s with ${c.sizeMiB} MiB; ${c.scp ? 'herd, sequential scp, parallel scp' : `herd only: ${c.scpNote}`}`)
  }
  console.log('bench: one run per point; every copy verified by sha256 on its host')
  let failures = 0
  for (const spec of opts.cases) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-bench-'))
    const cleanup = () => fs.rmSync(work, { recursive: true, force: true })
    process.once('exit', cleanup)
    try {
      const file = randomFile(work, 'bench.bin', spec.sizeMiB * MiB)
      for (const n of spec.hosts) {
        const run = await runCase(spec, n, file, work, opts)
        if (run.herd.exitCode !== 0 || run.herd.verified !== n) failures++
        results.runs.push(run)
        results.finishedAt = new Date().toISOString()
        printRun(run)
        writeOutputs(results, opts) // after every point, so an interrupted run keeps what it measured
      }
    } finally {
      cleanup()
      process.removeListener('exit', cleanup)
    }
  }
  results.finishedAt = new Date().toISOString()
  writeOutputs(results, opts)
  console.log(`\n${markdownTable(results)}`)
  console.log(`bench: wrote ${path.relative(process.cwd(), opts.out)}, ${path.relative(process.cwd(), opts.out.replace(/\.json$/, ''))}.md and ${path.relative(process.cwd(), opts.chart)}`)
  return failures ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: ${(err as Error)?.stack ?? err}`)
    process.exit(1)
  },
)
