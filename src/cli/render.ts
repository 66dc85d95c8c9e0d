// How a run looks in a terminal: a live bar on a TTY, else the core's line per event; and the report's end.
import cliProgress from 'cli-progress'
import type { RunListener } from '../core/distribute.js'
import type { ProgressEvent } from '../core/protocol.js'
import { count, type Report } from '../core/report.js'
import { eventLines, formatBytes } from '../core/report-text.js'

function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '--'
  if (s < 60) return `${Math.round(s)}s`
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`
}

/** Renders run events; `out` receives human lines. A bar only on a terminal and without --quiet. */
export function makeRenderer(opts: { tty: boolean; quiet: boolean; hosts: number; size: number; out: (line: string) => void }): RunListener & { stop(): void } {
  if (!opts.tty || opts.quiet) return { ...eventLines(opts), stop() {} }
  const have = new Map<string, number>()
  const rate = new Map<string, number>()
  const finished = new Set<string>()
  const bar = new cliProgress.SingleBar(
    {
      format: 'herd |{bar}| {percentage}% | {done}/{hosts} hosts | {bytes} | {rate}/s | ETA {eta_text}',
      hideCursor: true,
      clearOnComplete: true,
      stream: process.stderr,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  )
  bar.start(opts.hosts * opts.size, 0, { done: 0, hosts: opts.hosts, bytes: formatBytes(0), rate: formatBytes(0), eta_text: '--' })
  const update = () => {
    const total = [...have.values()].reduce((a, b) => a + b, 0)
    const r = [...rate.values()].reduce((a, b) => a + b, 0)
    const remaining = opts.hosts * opts.size - total
    bar.update(total, { done: finished.size, bytes: formatBytes(total), rate: formatBytes(r), eta_text: r > 0 ? formatSeconds(remaining / r) : '--' })
  }
  const say = (line: string) => {
    bar.stop()
    opts.out(line)
    bar.start(opts.hosts * opts.size, 0, { done: finished.size, hosts: opts.hosts })
    update()
  }
  return {
    onHostState(host, state, detail) {
      if (state === 'done') {
        finished.add(host)
        have.set(host, opts.size)
        rate.delete(host)
      }
      if (state === 'failed') {
        finished.add(host)
        rate.delete(host)
      }
      if (state === 'failed' || state === 'retrying') say(`${host}: ${state}: ${detail ?? ''}`)
      update()
    },
    onProgress(host: string, p: ProgressEvent) {
      have.set(host, p.have)
      rate.set(host, p.rate)
      update()
    },
    stop() {
      bar.stop()
    },
  }
}

/** The end of a run in words: one line per failed host with its cause, then the totals. */
export function summaryLines(report: Report): string[] {
  const lines: string[] = []
  for (const h of report.hosts.filter((x) => x.status !== 'ok')) {
    lines.push(`FAILED ${h.host}: ${h.cause ?? h.status}${h.logFile ? ` (log: ${h.logFile})` : ''}`)
  }
  const ok = report.succeeded.length
  const unchanged = report.hosts.filter((h) => h.status === 'ok' && !h.transferred).length
  const copies = report.size > 0 ? report.bytesFromRunner / report.size : 0
  const tunnelled = report.hosts.filter((h) => h.runnerVia === 'ssh').length
  // Hosts that got every byte from the runner reached no other host: they cost what scp would.
  const alone = report.hosts.length > 1 ? report.hosts.filter((h) => h.status === 'ok' && h.downloaded > 0 && h.fromRunner >= h.downloaded).map((h) => h.host) : []
  lines.push(
    `${ok}/${count(report.hosts.length, 'host has', 'hosts have')} ${report.destination} (${formatBytes(report.size)}, sha256 ${report.sha256.slice(0, 16)}…)` +
      `${unchanged ? `, ${unchanged} already had it` : ''}${tunnelled ? `, ${tunnelled} reached the runner through SSH` : ''}; ${report.failed.length} failed; ` +
      `${report.seconds.toFixed(1)} s; runner uploaded ${formatBytes(report.bytesFromRunner)} (${copies.toFixed(2)} copies)` +
      (report.interrupted ? `; interrupted by ${report.interrupted}` : ''),
  )
  const given = report.hosts.filter((h) => h.runtimeBytes).length
  if (given > 0) lines.push(`Node runtime uploaded to ${count(given, 'host')} without a usable node: ${formatBytes(report.runtimeBytes)} from the runner, kept in their working folders for later runs`)
  if (alone.length > 0) lines.push(`${alone.join(', ')} got every byte from the runner: ${alone.length === 1 ? 'it' : 'they'} reached no other host (check the firewall between the hosts)`)
  return lines
}
