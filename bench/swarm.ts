// The swarm benchmark: pushes a random file to local sshd hosts (shaped or unshaped links) with herd, with the floor (the ideal push over
// plain TCP), with scp one host after another and with scp to all hosts at once; verifies every copy, counts every method's CPU in
// cgroups, prints the ratios to the physical bound and to the floor, and writes JSON, a Markdown table and an SVG chart.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { canRunCluster, startCluster } from '../test/support/cluster.js'
import { cliPath, hostsFile, randomFile } from '../test/support/herd.js'
import { CpuAccounting, moveInto, type PointGroups } from './cpu.js'
import { failedHerd, runHerd } from './herd-run.js'
import { measured, runFloorMethod, runScp, type BenchFile } from './methods.js'
import type { BenchResults, CaseRun, CaseSpec, CpuUse, FloorRun, ScpRun } from './model.js'
import { boundOf, budgetOf, GiB, linkText, MiB, NOTES, parseOptions, type Options } from './options.js'
import { markdownTable, svgChart } from './render.js'

const f1 = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d))
const cpuText = (c: CpuUse | undefined) =>
  c ? `CPU ${f1(c.secondsPerGiB)} s/GiB (runner ${f1(c.runnerSeconds)} s + hosts ${f1(c.hostsSeconds)} s)` : 'CPU n/a'

function printRun(run: CaseRun): void {
  const h = run.herd
  const t = h.timeline
  const size = run.sizeBytes >= GiB ? `${f1(run.sizeBytes / GiB)} GiB` : `${f1(run.sizeBytes / MiB, 0)} MiB`
  const links = run.rateMbit ? `${run.rateMbit} Mbit/s links (nominal tbf rate)` : 'unshaped links'
  console.log(`\n== ${run.case}: N=${run.hosts}, ${links}, ${size}; bound ${f1(run.boundSeconds)} s, N × bound ${f1(run.runnerLinkSeconds)} s (load before ${f1(run.loadBefore, 2)})`)
  console.log(
    `  herd            ${f1(h.seconds).padStart(7)} s  exit ${h.exitCode}, ${h.verified}/${run.hosts} sha256 ok; report ${f1(h.reportSeconds)} s; ` +
      `hashed ${f1(t.hashSeconds)} s, hosts fetching ${f1(t.firstFetchingAt)}–${f1(t.lastFetchingAt)} s, done ${f1(t.firstDoneAt)}–${f1(t.lastDoneAt)} s; ${cpuText(h.cpu)}`,
  )
  if (h.error) console.log(`  herd FAILED: ${h.error}`)
  const fl = run.floor
  if (fl) console.log(`  floor           ${f1(fl.seconds).padStart(7)} s  ${fl.verified}/${run.hosts} sha256 ok; ${cpuText(fl.cpu)}${fl.error ? `; FAILED: ${fl.error}` : ''}`)
  for (const [label, s] of [['scp sequential', run.scpSequential], ['scp parallel', run.scpParallel]] as const) {
    if (s) console.log(`  ${label.padEnd(15)} ${f1(s.seconds).padStart(7)} s  ${s.verified}/${run.hosts} sha256 ok; ${cpuText(s.cpu)}${s.error ? `; ${s.error}` : ''}`)
  }
  const r = run.ratios
  console.log(`  ratios: herd/bound ${f1(r.herdToBound, 2)}, herd/floor ${f1(r.herdToFloor, 2)}, herd/parallel scp ${f1(r.herdToParallelScp, 2)}, herd/sequential scp ${f1(r.herdToSequentialScp, 2)}`)
  console.log(
    `  runner uploaded ${f1(h.runnerCopies, 2)} copies; peak RSS runner ${f1(h.runnerPeakRssMiB, 0)} MiB, agent ${f1(h.agentPeakRssMiB, 0)} MiB ` +
      `(median ${f1(h.agentMedianPeakRssMiB, 0)}, ${h.agentsSeen} agent processes seen); machine CPU ${h.machineBusy === undefined ? '–' : Math.round(h.machineBusy * 100)} % busy ` +
      `(kernel ${h.machineKernel === undefined ? '–' : Math.round(h.machineKernel * 100)} %) while herd ran`,
  )
  console.log(`  hashing: herd ${h.hashSeconds ? h.hashSeconds.toFixed(2) : '< 0.01'} s (its phase line, 0.01 s resolution), sha1sum ${f1(h.sha1sumSeconds, 2)} s, herd/sha1sum ${f1(r.hashToSha1sum, 2)}`)
}

/** One point: a cluster of n hosts, then herd, the floor and the scp baselines in turn, each measured alone. */
async function runCase(spec: CaseSpec, n: number, file: BenchFile, work: string, opts: Options, cpu: CpuAccounting | undefined): Promise<CaseRun> {
  const bound = boundOf(spec)
  const budget = budgetOf(spec)
  const loadBefore = os.loadavg()[0]!
  const startedAt = new Date().toISOString()
  const cluster = await startCluster({ hosts: n, rateMbit: spec.rateMbit })
  let groups: PointGroups | undefined
  try {
    if (cpu) {
      cpu.watchExit() // after the cluster's own exit handlers, which kill its processes first
      try {
        groups = cpu.point(`${spec.name}-n${n}-${cluster.id}`, n)
        // Each sshd listener, once: every session, shell, scp and agent it starts is counted in its host's group.
        for (const h of cluster.hosts) moveInto(groups.hosts[h.index]!, h.sshdPid)
      } catch (err) {
        console.log(`bench: CPU not counted for this point: ${(err as Error).message}`)
        if (groups) cpu.removePoint(groups)
        groups = undefined
      }
    }
    // The agents run the node that a root login's PATH finds on the hosts, as for a user; so does the floor.
    if (!opts.machine.hostNode) {
      opts.machine.hostNode = (await cluster.shOn(cluster.hosts[0]!, 'node --version', 10_000)).stdout.trim() || 'unknown'
      console.log(`bench: the agents and the floor's receivers run node ${opts.machine.hostNode} (what a root login's PATH finds on the hosts)`)
    }
    const list = hostsFile(work, cluster.hosts)
    const logDir = opts.logDir ? path.join(opts.logDir, `${spec.name}-n${n}`) : undefined
    if (logDir) fs.mkdirSync(logDir, { recursive: true })
    const herd = await measured(cluster, groups, file, () => runHerd(cluster, groups, file, list, work, logDir, budget), failedHerd)
    const floor = await measured(cluster, groups, file, () => runFloorMethod(cluster, groups, file, budget), (error): FloorRun => ({ verified: 0, timedOut: false, error }))
    const scpFailed = (error: string): ScpRun => ({ seconds: Number.NaN, verified: 0, failed: n, timedOut: false, error })
    let scpSequential: ScpRun | undefined
    let scpParallel: ScpRun | undefined
    if (spec.scp && spec.sequentialScp !== false) scpSequential = await measured(cluster, groups, file, () => runScp(cluster, groups, file, budget, false), scpFailed)
    if (spec.scp) scpParallel = await measured(cluster, groups, file, () => runScp(cluster, groups, file, budget, true), scpFailed)
    const good = (s: ScpRun | undefined) => (s && s.verified === n ? s.seconds : undefined)
    const par = good(scpParallel)
    const seq = good(scpSequential)
    const herdOk = herd.exitCode === 0 && herd.verified === n
    const herdSeconds = herdOk ? herd.seconds : undefined
    return {
      case: spec.name,
      hosts: n,
      rateMbit: spec.rateMbit,
      sizeBytes: file.size,
      boundSeconds: bound,
      runnerLinkSeconds: bound === undefined ? undefined : n * bound,
      herd,
      floor,
      scpSequential,
      scpParallel,
      ratios: {
        // No bound on unshaped links, so no herd/bound there.
        herdToBound: herdSeconds !== undefined && bound !== undefined ? herdSeconds / bound : undefined,
        herdToFloor: herdSeconds !== undefined && floor.seconds ? herdSeconds / floor.seconds : undefined,
        herdToParallelScp: herdSeconds !== undefined && par ? herdSeconds / par : undefined,
        herdToSequentialScp: herdSeconds !== undefined && seq ? herdSeconds / seq : undefined,
        // herd prints its hashing time to 0.01 s: below that the ratio says nothing.
        hashToSha1sum: herd.hashSeconds && herd.sha1sumSeconds ? herd.hashSeconds / herd.sha1sumSeconds : undefined,
      },
      loadBefore,
      startedAt,
    }
  } finally {
    await cluster.destroy()
    if (groups && !cpu!.removePoint(groups)) console.log(`bench: could not remove the cgroups under ${path.dirname(groups.runner)} (still busy)`)
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

/** Every point of every selected case, in order; how many points had a method fail. */
async function runCases(opts: Options, results: BenchResults, cpu: CpuAccounting | undefined): Promise<number> {
  let failures = 0
  for (const spec of opts.cases) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-bench-'))
    const cleanup = () => fs.rmSync(work, { recursive: true, force: true })
    const forget = atExitOrSignal(cleanup)
    try {
      const file = { ...randomFile(work, 'bench.bin', spec.sizeMiB * MiB), size: spec.sizeMiB * MiB }
      for (const n of spec.hosts) {
        const run = await runCase(spec, n, file, work, opts, cpu)
        const bad = (m: { verified: number; error?: string } | undefined) => m !== undefined && (m.verified !== n || m.error !== undefined)
        if (run.herd.exitCode !== 0 || bad(run.herd) || bad(run.floor) || bad(run.scpSequential) || bad(run.scpParallel)) failures++
        results.runs.push(run)
        results.finishedAt = new Date().toISOString()
        printRun(run)
        writeOutputs(results, opts) // after every point, so an interrupted run keeps what it measured
      }
    } finally {
      cleanup()
      forget()
    }
  }
  return failures
}

/**
 * Runs `fn` at exit, and on SIGINT/SIGTERM/SIGHUP (which skip 'exit'); then the signal kills the process
 * as before, unless another handler (a cluster's, the cgroups') is still there to do it. Returns a
 * function that unregisters it.
 */
function atExitOrSignal(fn: () => void): () => void {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
  const handlers = signals.map((sig) => {
    const onSignal = () => {
      fn()
      process.removeListener(sig, onSignal)
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
    }
    process.on(sig, onSignal)
    return onSignal
  })
  process.once('exit', fn)
  return () => {
    process.removeListener('exit', fn)
    signals.forEach((sig, i) => process.removeListener(sig, handlers[i]!))
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
  const acct = CpuAccounting.open()
  const cpu = acct instanceof CpuAccounting ? acct : undefined
  const results: BenchResults = {
    tool: 'herd-action swarm benchmark',
    startedAt: new Date().toISOString(),
    finishedAt: '',
    machine,
    notes: NOTES,
    cpuAccounting: cpu ? `cgroup v2 cpu.stat usage_usec under ${cpu.parent} (one group for the runner, one per host)` : `n/a: ${(acct as { why: string }).why}`,
    cases: opts.cases,
    runs: [],
  }
  console.log(`bench: ${machine.nproc} CPUs (${machine.cpuModel}), ${f1(machine.memoryGiB)} GiB RAM, Linux ${machine.kernel}, node ${machine.node} (runner), ${machine.openssh}`)
  console.log(`bench: CPU counted by ${results.cpuAccounting}`)
  for (const c of opts.cases) {
    const bound = boundOf(c)
    if (!c.scp && bound !== undefined) c.scpNote = `${c.scpNote ?? 'scp not run'} (≥ ${Math.round(c.hosts.reduce((sum, n) => sum + n * bound, 0))} s per scp method for this case)`
    const scp = c.scp ? (c.sequentialScp === false ? 'parallel scp' : 'sequential scp, parallel scp') : `no scp: ${c.scpNote}`
    console.log(`bench: case ${c.name} (${c.purpose}): N = ${c.hosts.join(', ')} on ${linkText(c.rateMbit)} links with ${c.sizeMiB} MiB; herd, floor, ${scp}`)
  }
  console.log('bench: one run per point; every copy verified by sha256 on its host')
  let failures: number
  try {
    failures = await runCases(opts, results, cpu)
  } finally {
    // Every point's cluster is destroyed by now, so the groups are empty.
    if (cpu && !cpu.removeAll()) console.log(`bench: could not remove ${cpu.parent} (still busy)`)
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
