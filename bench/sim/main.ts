// `npm run sim`: simulates a push to each N (up to 10,000 hosts) with the agents' own piece policy, or checks the simulation against a benchmark run; prints and writes the table and the chart.
import fs from 'node:fs'
import path from 'node:path'
import { checkAgainst } from './check.js'
import { parseSimOptions, type SimOptions } from './options.js'
import { simChart, simTable, type SimReport, type SimRow } from './report.js'
import { simulate } from './sim.js'
import { pieceLengthFor } from '../../src/core/swarm/torrent.js'

const f = (n: number | undefined, d = 1) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d))

function write(report: SimReport, opts: SimOptions): void {
  fs.mkdirSync(path.dirname(opts.out), { recursive: true })
  fs.writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n')
  const stem = opts.out.replace(/\.json$/, '')
  fs.writeFileSync(`${stem}.md`, simTable(report))
  if (report.rows.length) fs.writeFileSync(`${stem}.svg`, simChart(report))
}

function main(): number {
  let opts: SimOptions
  try {
    opts = parseSimOptions(process.argv.slice(2))
  } catch (err) {
    console.error(`sim: ${(err as Error).message}`)
    return 2
  }
  const report: SimReport = {
    tool: 'herd-action swarm simulation',
    startedAt: new Date().toISOString(),
    command: `npm run sim -- ${process.argv.slice(2).join(' ')}`.trim(),
    scenario: { ...opts.base },
    rows: [],
    checks: [],
  }
  if (opts.check) {
    for (const file of opts.check) {
      if (!fs.existsSync(file)) {
        console.error(`sim: --check ${file}: no such file; give results JSONs the benchmark wrote (bench/results/latest.json)`)
        return 2
      }
      report.checks.push(...checkAgainst(file, opts.base, opts.base.efficiency).map((row) => ({ ...row, file: path.relative(process.cwd(), file) })))
    }
  } else {
    const b = opts.base
    console.log(
      `sim: ${f(b.sizeBytes / 2 ** 20, 0)} MiB in pieces of ${b.pieceLength ? `${b.pieceLength / 1024} KiB` : 'pieceLengthFor(size, N)'}, links ${b.rateMbit} Mbit/s (runner ${b.runnerMbit}) at ${b.efficiency} efficiency, ` +
        `latency ${b.latencyMs} ms, ${b.slowFraction * 100} % of hosts at ${b.slowFactor}x, peer list ${b.peerList}, tracker remembers ${b.trackerCache}`,
    )
    for (const n of opts.hosts) {
      const progress = (s: number, done: number) => console.log(`  N=${n}: ${f(s)} s simulated, ${done} hosts done`)
      const scenario = { ...opts.base, hosts: n, pieceLength: opts.base.pieceLength ?? pieceLengthFor(opts.base.sizeBytes, n) }
      const row: SimRow = simulate(scenario, progress)
      if (opts.baseline) row.equal = simulate({ ...scenario, slowFraction: 0 }, progress)
      report.rows.push(row)
      console.log(
        `N=${n}: last host ${f(row.seconds)} s = ${f(row.seconds / row.bound, 2)} x bound, p50 ${f(row.p50)} s, p99 ${f(row.p99)} s, runner ${f(row.runnerCopies, 2)} copies, ` +
          `${f(row.peers, 0)} peers per host, ${row.completed}/${n} done${row.stuck ? `, ${row.stuck} stuck` : ''}` +
          `${row.equal ? `; others' p50 ${f(row.othersP50)} s against ${f(row.equal.p50)} s with equal links` : ''} (${row.events} events, ${f(row.wallSeconds, 0)} s)`,
      )
      write(report, opts)
    }
  }
  write(report, opts)
  console.log(`\n${simTable(report)}`)
  console.log(`sim: wrote ${path.relative(process.cwd(), opts.out)} and the .md${report.rows.length ? ' and .svg' : ''} beside it`)
  return 0
}

process.exitCode = main()
