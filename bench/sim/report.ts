// The simulation's output: a Markdown table per scenario and an SVG chart of time against N (bench/render.ts's panels), with measured points where a check ran.
import { escapeXml, panel, type Series } from '../render.js'
import type { SimResult } from './sim.js'

export interface SimRow extends SimResult {
  /** The same N with equal links, where slow hosts were asked for. */
  equal?: SimResult
}

/** A measured point beside its simulation (the check against the benchmark). */
export interface CheckRow {
  /** The results file the point comes from. */
  file?: string
  case: string
  hosts: number
  rateMbit: number
  sizeBytes: number
  /** The hosts' transfer: first host fetching to last host done, from herd's own timeline. */
  measured: number
  /** herd's wall time (what the benchmark's table shows). */
  measuredWall: number
  /** The floor's time in that run, and the link efficiency it gives. */
  floor?: number
  efficiency: number
  simulated: number
  /** With the machine's CPU modelled as well, when asked for. */
  simulatedWithCpu?: number
  runnerCopies: number
  measuredCopies?: number
}

export interface SimReport {
  tool: 'herd-action swarm simulation'
  startedAt: string
  command: string
  scenario: Record<string, unknown>
  rows: SimRow[]
  checks: CheckRow[]
}

const f = (n: number | undefined, d = 1): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d))
const size = (bytes: number): string => (bytes >= 2 ** 30 ? `${f(bytes / 2 ** 30, bytes % 2 ** 30 ? 1 : 0)} GiB` : `${f(bytes / 2 ** 20, 0)} MiB`)

export function simTable(r: SimReport): string {
  const lines: string[] = []
  if (r.rows.length) {
    const slow = r.rows.some((x) => x.equal)
    lines.push(
      `| N | file | pieces | link | bound s | last host s | time / bound | p50 s | p99 s | p99 / p50 | runner copies | peers per host |${slow ? ' others\' p50 s | equal links p50 s | others / equal |' : ''} sim wall s |`,
    )
    lines.push(`|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|${slow ? '--:|--:|--:|' : ''}--:|`)
    for (const x of r.rows) {
      const incomplete = x.completed + x.failed < x.hosts ? ` (${x.stuck} stuck)` : ''
      const extra = slow ? ` ${f(x.othersP50)} | ${f(x.equal?.p50)} | ${f(x.equal ? x.othersP50 / x.equal.p50 : undefined, 2)} |` : ''
      lines.push(
        `| ${x.hosts} | ${size(x.sizeBytes)} | ${x.pieces} × ${x.pieceLength / 1024} KiB | ${x.rateMbit} Mbit/s | ${f(x.bound)} | ${f(x.seconds)}${incomplete} | ${f(x.seconds / x.bound, 2)} | ` +
          `${f(x.p50)} | ${f(x.p99)} | ${f(x.p99 / x.p50, 2)} | ${f(x.runnerCopies, 2)} | ${f(x.peers, 0)} |${extra} ${f(x.wallSeconds, 0)} |`,
      )
    }
  }
  if (r.checks.length) {
    if (lines.length) lines.push('')
    lines.push('| run | case | N | link | file | floor s (link efficiency) | herd measured: transfer s (wall s) | simulated s | simulated / measured |' + (r.checks.some((c) => c.simulatedWithCpu) ? ' with the machine\'s CPU s | / measured |' : '') + ' runner copies measured / simulated |')
    lines.push(`|---|---|--:|--:|--:|--:|--:|--:|--:|${r.checks.some((c) => c.simulatedWithCpu) ? '--:|--:|' : ''}--:|`)
    for (const c of r.checks) {
      const cpu = r.checks.some((x) => x.simulatedWithCpu) ? ` ${f(c.simulatedWithCpu)} | ${f(c.simulatedWithCpu ? c.simulatedWithCpu / c.measured : undefined, 2)} |` : ''
      lines.push(
        `| ${c.file ? c.file.split('/').pop()!.replace(/\.json$/, '') : ''} | ${c.case} | ${c.hosts} | ${c.rateMbit} Mbit/s | ${size(c.sizeBytes)} | ${f(c.floor)} (${f(c.efficiency, 2)}) | ${f(c.measured)} (${f(c.measuredWall)}) | ${f(c.simulated)} | ${f(c.simulated / c.measured, 2)} |${cpu} ${f(c.measuredCopies, 2)} / ${f(c.runnerCopies, 2)} |`,
      )
    }
  }
  return lines.join('\n') + '\n'
}

/** Time against N: the simulated last host, p50, p99 and the bound; measured points where a check ran. */
export function simChart(r: SimReport): string {
  const rows = [...r.rows].sort((a, b) => a.hosts - b.hosts)
  const pts = (g: (x: SimRow) => number | undefined) => rows.flatMap((x) => (g(x) ?? 0) > 0 ? [{ n: x.hosts, s: g(x)! }] : [])
  const series: Series[] = [
    { label: 'bound', color: '#000000', dash: '6 4', points: pts((x) => x.bound) },
    { label: 'p50', color: '#1f77b4', points: pts((x) => x.p50) },
    { label: 'p99', color: '#9467bd', points: pts((x) => x.p99) },
    { label: 'last host', color: '#d62728', points: pts((x) => x.seconds) },
    { label: 'equal links, last host', color: '#ff9896', dash: '3 3', points: pts((x) => x.equal?.seconds) },
  ]
  const first = rows[0]
  const title = first ? `simulated: ${size(first.sizeBytes)} at ${first.rateMbit} Mbit/s` : 'simulated'
  const w = 620
  const h = 380
  const body = [panel(title, series.filter((s) => s.points.length), 0, 0, w, h)]
  const legend: [string, string, string | undefined][] = [
    ['last host (simulated)', '#d62728', undefined],
    ['p99 of hosts', '#9467bd', undefined],
    ['p50 of hosts', '#1f77b4', undefined],
    ...(rows.some((x) => x.equal) ? ([['equal links, last host', '#ff9896', '3 3']] as [string, string, string][]) : []),
    ['bound = file size / nominal link rate', '#000000', '6 4'],
  ]
  legend.forEach(([label, color, dash], i) => {
    const y = h + 14 + i * 18
    body.push(`<line x1="20" x2="50" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`)
    body.push(`<text x="56" y="${y + 4}" font-size="12">${escapeXml(label)}</text>`)
  })
  const height = h + 24 + legend.length * 18
  body.push(`<text x="20" y="${height - 6}" font-size="11" fill="#555">${escapeXml(`${r.startedAt.slice(0, 10)}: ${r.command}`)}</text>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${height}" viewBox="0 0 ${w} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="#fff"/>\n${body.join('\n')}\n</svg>\n`
}
