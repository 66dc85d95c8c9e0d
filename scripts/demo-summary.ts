// The demo's last word: herd's time beside what the alternative costs (parallel scp, measured or N × one copy) and one copy's time.

export interface DemoRun {
  hosts: number
  sizeMiB: number
  rateMbit: number
  /** Wall time of the herd run, and how many copies were verified. */
  herd: { seconds: number; verified: number }
  /** One scp per host, all at once, when the demo measured it. */
  scp?: { seconds: number; verified: number }
}

/** One copy of the file over one link at the shaped rate: no push to any number of hosts can be faster. */
export function oneCopySeconds(run: Pick<DemoRun, 'sizeMiB' | 'rateMbit'>): number {
  return (run.sizeMiB * 1024 * 1024 * 8) / (run.rateMbit * 1e6)
}

/** The comparison, one method a line: herd, parallel scp (measured, or N × one copy when it was not), one copy. */
export function comparisonLines(run: DemoRun): string[] {
  const copy = oneCopySeconds(run)
  const row = (what: string, seconds: number, note: string) => `demo:   ${what.padEnd(30)} ${seconds.toFixed(1).padStart(7)} s  ${note}`
  const times = (seconds: number) => `${(seconds / run.herd.seconds).toFixed(1)}× herd's time`
  const scp = run.scp
    ? row('parallel scp (measured)', run.scp.seconds, `one scp per host, all at once, ${run.scp.verified}/${run.hosts} copies verified: ${times(run.scp.seconds)}`)
    : row(`parallel scp (${run.hosts} × one copy)`, run.hosts * copy, `not measured (DEMO_SCP=0); at least this, since the runner's link carries every copy: ${times(run.hosts * copy)}`)
  return [
    `demo: ${run.sizeMiB} MiB to ${run.hosts} hosts, every link ${run.rateMbit} Mbit/s:`,
    row('herd', run.herd.seconds, `${run.herd.verified}/${run.hosts} copies verified`),
    scp,
    row('one copy over one link', copy, 'the bound: what one copy takes, herd\'s target for the whole fleet'),
  ]
}
