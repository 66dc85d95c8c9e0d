// Checks the simulation against the real cluster: each point of a benchmark results JSON simulated with that run's start times and link efficiency.
import fs from 'node:fs'
import { pieceLengthFor } from '../../src/core/swarm/torrent.js'
import type { BenchResults } from '../model.js'
import type { CheckRow } from './report.js'
import { simulate, type Scenario } from './sim.js'
import type { BaseScenario } from './options.js'

/** Latency of the cluster's veths and bridge, one way (no netem). */
const CLUSTER_LATENCY_MS = 0.05

/**
 * One row per shaped point where herd succeeded. The links' efficiency (the share of the nominal rate
 * TCP carries there) is the floor's, measured in the same run: bound / floor time, unless the floor was
 * not faster than herd (then the machine, not the links, set the floor's pace, and `fallback` is used).
 * Each point is simulated a second time with the machine's cores as one link all bytes share, at herd's
 * CPU per GiB measured in that run (this machine's 2 cores, where 32 hosts run, are a bottleneck too).
 */
export function checkAgainst(file: string, base: BaseScenario, fallback: number): CheckRow[] {
  const results = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResults
  const rows: CheckRow[] = []
  for (const run of results.runs) {
    const t = run.herd.timeline
    if (!run.rateMbit || !run.boundSeconds || run.herd.exitCode !== 0 || t.firstFetchingAt === undefined || t.lastDoneAt === undefined) continue
    const floor = run.floor?.seconds
    const efficiency = floor && floor < run.herd.seconds ? Math.min(0.95, run.boundSeconds / floor) : fallback
    const starts = run.herd.hosts.map((h) => (h.fetchingAt ?? t.firstFetchingAt!) - t.firstFetchingAt!)
    const scenario: Scenario = {
      ...base,
      hosts: run.hosts,
      sizeBytes: run.sizeBytes,
      pieceLength: pieceLengthFor(run.sizeBytes, run.hosts),
      rateMbit: run.rateMbit,
      runnerMbit: run.rateMbit,
      efficiency,
      latencyMs: CLUSTER_LATENCY_MS,
      joinAt: starts,
      slowFraction: 0,
      lateFraction: 0,
      failFraction: 0,
      machineGiBps: undefined,
    }
    const sim = simulate(scenario)
    const perGiB = run.herd.cpu?.secondsPerGiB
    const withCpu = perGiB ? simulate({ ...scenario, machineGiBps: results.machine.nproc / perGiB }) : undefined
    rows.push({
      case: run.case,
      hosts: run.hosts,
      rateMbit: run.rateMbit,
      sizeBytes: run.sizeBytes,
      measured: t.lastDoneAt - t.firstFetchingAt,
      measuredWall: run.herd.seconds,
      floor,
      efficiency,
      simulated: sim.seconds,
      simulatedWithCpu: withCpu?.seconds,
      runnerCopies: sim.runnerCopies,
      measuredCopies: run.herd.runnerCopies,
    })
  }
  return rows
}
