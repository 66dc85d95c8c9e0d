// Turns benchmark results into a Markdown table (for the README) and an SVG chart of time against host count.
import type { BenchResults, CaseRun } from './model.js'

const fmt = (n: number | undefined, digits = 1): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits))
const pct = (share: number | undefined): string => (share === undefined || !Number.isFinite(share) ? '–' : `${Math.round(share * 100)} %`)
/** A method's CPU per GiB delivered, or n/a when it was not counted (no cgroup2, or a results file from before cgroups). */
const cpuFmt = (c: { secondsPerGiB: number } | undefined): string => (c ? fmt(c.secondsPerGiB, 1) : 'n/a')
const sizeText = (bytes: number): string => (bytes >= 1024 ** 3 ? `${fmt(bytes / 1024 ** 3, bytes % 1024 ** 3 ? 1 : 0)} GiB` : `${fmt(bytes / 1024 ** 2, 0)} MiB`)

export function machineLine(r: BenchResults): string {
  const m = r.machine
  return `${m.nproc} CPUs (${m.cpuModel}), ${fmt(m.memoryGiB, 0)} GiB RAM, Linux ${m.kernel}, Node ${m.node}${m.hostNode && m.hostNode !== m.node ? ` (agents: ${m.hostNode})` : ''}, ${m.openssh}`
}

/** The results as a Markdown table, with the machine and how to read it. */
export function markdownTable(r: BenchResults): string {
  const lines: string[] = []
  lines.push(`Benchmark of ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC on ${machineLine(r)}.`)
  lines.push('')
  lines.push(
    '| case | N | link | file | bound s | floor s | herd s | parallel scp s | sequential scp s | herd / bound | herd / floor | herd / par. scp | herd / seq. scp | ' +
      'herd CPU s / GiB | par. scp CPU s / GiB | floor CPU s / GiB | runner sent (copies) | runner peak RSS MiB | agent peak RSS MiB | machine CPU busy (kernel) | hashing herd / sha1sum s |',
  )
  lines.push(`|---|${'--:|'.repeat(20)}`)
  for (const run of r.runs) {
    const h = run.herd
    const ok = h.exitCode === 0 && h.verified === run.hosts
    const scp = (s: CaseRun['scpParallel']) => (s ? `${fmt(s.seconds)}${s.verified === run.hosts ? '' : ` (${s.verified}/${run.hosts} ok)`}` : 'not run')
    const fl = run.floor
    const floor = fl ? (fl.seconds !== undefined && !fl.error ? fmt(fl.seconds) : `FAILED (${fl.verified}/${run.hosts} ok)`) : 'not run'
    // Parallel scp's CPU; sequential scp's when only that one ran (both in the JSON).
    const scpCpu = (run.scpParallel ?? run.scpSequential)?.cpu
    lines.push(
      `| ${run.case} | ${run.hosts} | ${run.rateMbit ? `${run.rateMbit} Mbit/s` : 'unshaped'} | ${sizeText(run.sizeBytes)} | ${fmt(run.boundSeconds)} | ${floor} | ${fmt(h.seconds)}${ok ? '' : ` (FAILED: ${h.verified}/${run.hosts} ok)`} | ${scp(run.scpParallel)} | ${scp(run.scpSequential)} | ` +
        `${fmt(run.ratios.herdToBound, 2)} | ${fmt(run.ratios.herdToFloor, 2)} | ${fmt(run.ratios.herdToParallelScp, 2)} | ${fmt(run.ratios.herdToSequentialScp, 2)} | ` +
        `${h.cpu || h.cpuSecondsPerGiB === undefined ? cpuFmt(h.cpu) : `${fmt(h.cpuSecondsPerGiB, 1)} (runner + agents only)`} | ${run.scpParallel || run.scpSequential ? cpuFmt(scpCpu) : '–'} | ${fl ? cpuFmt(fl.cpu) : '–'} | ${fmt(h.runnerCopies, 2)} | ` +
        `${fmt(h.runnerPeakRssMiB, 0)} | ${fmt(h.agentPeakRssMiB, 0)} | ${pct(h.machineBusy)} (${pct(h.machineKernel)}) | ${h.hashSeconds ? fmt(h.hashSeconds, 2) : '< 0.01'} / ${fmt(h.sha1sumSeconds, 2)} |`,
    )
  }
  lines.push('')
  for (const note of r.notes) lines.push(`- ${note}`)
  if (r.cpuAccounting) lines.push(`- CPU counted by ${r.cpuAccounting}.`)
  return lines.join('\n') + '\n'
}

export const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export interface Series {
  label: string
  color: string
  dash?: string
  width?: number
  points: { n: number; s: number }[]
}

/** One panel: log-scale seconds against N (N spaced by log2). */
export function panel(title: string, series: Series[], x0: number, y0: number, w: number, h: number): string {
  const all = series.flatMap((s) => s.points)
  const ns = [...new Set(all.map((p) => p.n))].sort((a, b) => a - b)
  const lo = Math.min(...all.map((p) => p.s))
  const hi = Math.max(...all.map((p) => p.s))
  const ticks = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].filter((t) => t >= lo / 2 && t <= hi * 2)
  const yMin = Math.log10(Math.min(ticks[0] ?? lo, lo) * 0.9)
  const yMax = Math.log10(Math.max(ticks[ticks.length - 1] ?? hi, hi) * 1.1)
  const left = x0 + 50
  const right = x0 + w - 10
  const top = y0 + 30
  const bottom = y0 + h - 40
  const xOf = (n: number) => {
    if (ns.length === 1) return (left + right) / 2
    const a = Math.log2(ns[0]!)
    const b = Math.log2(ns[ns.length - 1]!)
    return left + 20 + ((Math.log2(n) - a) / (b - a)) * (right - left - 40)
  }
  const yOf = (s: number) => bottom - ((Math.log10(s) - yMin) / (yMax - yMin)) * (bottom - top)
  const out: string[] = []
  out.push(`<text x="${x0 + w / 2}" y="${y0 + 18}" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`)
  out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#999"/>`)
  for (const t of ticks) {
    const y = yOf(t)
    out.push(`<line x1="${left}" x2="${right}" y1="${y}" y2="${y}" stroke="#eee"/>`)
    out.push(`<text x="${left - 5}" y="${y + 4}" text-anchor="end" font-size="11">${t}</text>`)
  }
  for (const n of ns) {
    out.push(`<text x="${xOf(n)}" y="${bottom + 16}" text-anchor="middle" font-size="11">${n}</text>`)
  }
  out.push(`<text x="${(left + right) / 2}" y="${bottom + 32}" text-anchor="middle" font-size="12">hosts (N)</text>`)
  out.push(`<text x="${x0 + 12}" y="${(top + bottom) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${x0 + 12} ${(top + bottom) / 2})">seconds (log scale)</text>`)
  for (const s of series) {
    if (s.points.length === 0) continue
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${xOf(p.n).toFixed(1)},${yOf(p.s).toFixed(1)}`).join(' ')
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`)
    if (!s.dash) for (const p of s.points) out.push(`<circle cx="${xOf(p.n).toFixed(1)}" cy="${yOf(p.s).toFixed(1)}" r="3.5" fill="${s.color}"><title>${escapeXml(`${s.label}: N=${p.n}, ${p.s.toFixed(1)} s`)}</title></circle>`)
  }
  return out.join('\n')
}

/** Time against N for herd, the floor, the scp baselines and the bounds; one panel per case (cases with one N share a panel only if nothing else exists). */
export function svgChart(r: BenchResults): string {
  const byCase = new Map<string, CaseRun[]>()
  for (const run of r.runs) byCase.set(run.case, [...(byCase.get(run.case) ?? []), run])
  let groups = [...byCase.entries()].filter(([, runs]) => runs.length >= 2)
  if (groups.length === 0) groups = [...byCase.entries()]
  const colors = { herd: '#d62728', floor: '#9467bd', par: '#1f77b4', seq: '#b0b0b0', bound: '#000000', link: '#2ca02c' }
  const pw = 460
  const ph = 330
  const width = pw * Math.max(1, groups.length)
  const columns = width > 700 ? 2 : 1
  const legendRows = Math.ceil(6 / columns) // the six lines of the legend below
  const legendH = 32 + legendRows * 18
  const height = ph + legendH
  const body: string[] = []
  groups.forEach(([name, runs], i) => {
    const first = runs[0]!
    const sorted = [...runs].sort((a, b) => a.hosts - b.hosts)
    const pick = (f: (x: CaseRun) => number | undefined) =>
      sorted.flatMap((x) => {
        const s = f(x)
        return s !== undefined && s > 0 ? [{ n: x.hosts, s }] : []
      })
    // Drawn bottom to top: the two scp lines often coincide, so the sequential one is wide and pale under the other.
    const series: Series[] = [
      { label: 'bound', color: colors.bound, dash: '6 4', points: pick((x) => x.boundSeconds) },
      { label: 'N × bound', color: colors.link, dash: '2 3', points: pick((x) => x.runnerLinkSeconds) },
      { label: 'sequential scp', color: colors.seq, width: 6, points: pick((x) => x.scpSequential?.seconds) },
      { label: 'parallel scp', color: colors.par, points: pick((x) => x.scpParallel?.seconds) },
      { label: 'floor', color: colors.floor, points: pick((x) => (x.floor?.error ? undefined : x.floor?.seconds)) },
      { label: 'herd', color: colors.herd, points: pick((x) => (x.herd.exitCode === 0 ? x.herd.seconds : undefined)) },
    ]
    body.push(panel(`${name}: ${sizeText(first.sizeBytes)} ${first.rateMbit ? `at ${first.rateMbit} Mbit/s` : 'on unshaped links'}`, series, i * pw, 0, pw, ph))
  })
  const legend: [string, string, string | undefined, number][] = [
    ['herd (wall time of the CLI)', colors.herd, undefined, 2],
    ['floor (ideal schedule over plain TCP)', colors.floor, undefined, 2],
    ['parallel scp (all at once)', colors.par, undefined, 2],
    ['sequential scp (one after another)', colors.seq, undefined, 6],
    ['bound = file size / nominal tbf link rate (none when unshaped)', colors.bound, '6 4', 2],
    ['N × bound: least time for any push that sends every copy from the runner', colors.link, '2 3', 2],
  ]
  legend.forEach(([label, color, dash, strokeWidth], i) => {
    const x = 20 + (i % columns) * (width / 2)
    const y = ph + 14 + Math.floor(i / columns) * 18
    body.push(`<line x1="${x}" x2="${x + 30}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="${strokeWidth}"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`)
    body.push(`<text x="${x + 36}" y="${y + 4}" font-size="12">${escapeXml(label)}</text>`)
  })
  body.push(`<text x="20" y="${height - 20}" font-size="11" fill="#555">${escapeXml(`${r.startedAt.slice(0, 10)}, one run per point, every copy verified by sha256`)}</text>`)
  body.push(`<text x="20" y="${height - 6}" font-size="11" fill="#555">${escapeXml(machineLine(r))}</text>`)
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="#fff"/>\n${body.join('\n')}\n</svg>\n`
  )
}
