// How a run shows on GitHub: the job summary table, one error annotation per failed host, its log folded in the job log.
import fs from 'node:fs'
import * as core from '@actions/core'
import { formatBytes } from '../core/report-text.js'
import { count, type HostReport, type Report } from '../core/report.js'

/** Rows beyond this are left to report.json: the job summary is limited to 1 MiB. */
const MAX_ROWS = 300
/** Lines of a failed host's log repeated in the job log. */
const LOG_TAIL_LINES = 60

/** Summary cells are HTML: host names and causes are text. */
function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function seconds(s: number): string {
  return `${s.toFixed(1)} s`
}

function statusCell(h: HostReport): string {
  switch (h.status) {
    case 'ok':
      return h.transferred ? '✅ ok' : '✅ already there'
    case 'failed':
      return `❌ failed${h.kind ? ` (${h.kind})` : ''}`
    case 'timed-out':
      return '⏱️ timed out'
    case 'interrupted':
      return '⏹️ interrupted'
  }
}

function rateCell(h: HostReport): string {
  return h.downloaded > 0 && h.seconds > 0 ? `${formatBytes(h.downloaded / h.seconds)}/s` : '–'
}

function hostRow(h: HostReport): string[] {
  return [
    `<code>${escapeHtml(h.host)}</code>`,
    statusCell(h),
    String(h.attempts),
    seconds(h.seconds),
    rateCell(h),
    (h.fromRunner > 0 ? formatBytes(h.fromRunner) : '–') + (h.runnerVia === 'ssh' ? ' (through SSH)' : ''),
    h.cause ? escapeHtml(h.cause) : ' ',
  ]
}

/** One line for the step's result: what setFailed says, or the success notice. */
export function outcomeLine(report: Report): string {
  const n = report.hosts.length
  if (report.interrupted) {
    const why = report.interrupted === 'timeout' ? 'the timeout' : report.interrupted
    return `interrupted by ${why}: ${report.succeeded.length} of ${count(n, 'host')} ${report.succeeded.length === 1 ? 'has' : 'have'} ${report.destination}, ${count(report.failed.length, 'does', 'do')} not (${report.failed.join(', ')})`
  }
  if (report.failed.length > 0) {
    const shown = report.failed.slice(0, 10).join(', ') + (report.failed.length > 10 ? `, and ${report.failed.length - 10} more` : '')
    return `${report.failed.length} of ${count(n, 'host')} failed: ${shown}; ${count(report.succeeded.length, 'has', 'have')} ${report.destination}`
  }
  return n === 1 ? `the host has ${report.destination}` : `all ${n} hosts have ${report.destination}`
}

/** Writes the job summary: a heading, the outcome, one row per host and the totals. */
export async function writeSummary(report: Report, details: { reportPath: string; logs: string }): Promise<void> {
  const n = report.hosts.length
  const failedFirst = [...report.hosts.filter((h) => h.status !== 'ok'), ...report.hosts.filter((h) => h.status === 'ok')]
  const shown = failedFirst.slice(0, MAX_ROWS)
  const attempts = report.hosts.reduce((a, h) => a + h.attempts, 0)
  const delivered = report.succeeded.length * report.size
  const header = ['Host', 'Status', 'Attempts', 'Time', 'Rate', 'From runner', 'Cause'].map((data) => ({ data, header: true }))
  const totals = [
    '<b>Total</b>',
    `<b>${report.succeeded.length} ok, ${report.failed.length} failed</b>`,
    String(attempts),
    seconds(report.seconds),
    report.seconds > 0 && delivered > 0 ? `${formatBytes(delivered / report.seconds)}/s` : '–',
    formatBytes(report.bytesFromRunner),
    ' ',
  ]
  const copies = report.size > 0 ? report.bytesFromRunner / report.size : 0
  const icon = report.failed.length === 0 && !report.interrupted ? '✅' : '❌'
  const summary = core.summary
    .addHeading(`herd: ${escapeHtml(report.destination)} on ${count(n, 'host')}`, 2)
    .addRaw(`<p>${icon} ${escapeHtml(outcomeLine(report))}</p>`, true)
    .addTable([header, ...shown.map(hostRow), totals])
  if (shown.length < n) summary.addRaw(`<p>${count(n - shown.length, 'more host is', 'more hosts are')} (all ok) listed in report.json.</p>`, true)
  summary.addRaw(
    `<p><code>${escapeHtml(report.file)}</code> (${formatBytes(report.size)}, sha256 <code>${report.sha256}</code>); ` +
      `the runner uploaded ${formatBytes(report.bytesFromRunner)} (${copies.toFixed(2)} copies of the file)` +
      `${report.bytesFromRunner < delivered ? ', the hosts shared the rest' : ''}. ` +
      `Report: <code>${escapeHtml(details.reportPath)}</code>; logs: ${escapeHtml(details.logs)}.</p>`,
    true,
  )
  await summary.write()
}

function logTail(file: string | undefined): string | undefined {
  if (!file) return undefined
  try {
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n')
    return (lines.length > LOG_TAIL_LINES ? [`… ${lines.length - LOG_TAIL_LINES} earlier lines in ${file}`] : []).concat(lines.slice(-LOG_TAIL_LINES)).join('\n')
  } catch {
    return undefined
  }
}

/** One error annotation per host that does not have the file, and its log's end folded in the job log. */
export function annotateFailures(report: Report): void {
  for (const h of report.hosts.filter((x) => x.status !== 'ok')) {
    const cause = h.cause ?? h.status
    core.error(cause.startsWith(`${h.host}:`) ? cause : `${h.host}: ${cause}`, { title: `herd: ${h.host} ${h.status}` })
    const tail = logTail(h.logFile)
    if (tail) {
      core.startGroup(`log of ${h.host}`)
      core.info(tail)
      core.endGroup()
    }
  }
}
