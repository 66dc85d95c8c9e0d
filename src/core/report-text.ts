// How a run reads as text in every front end: sizes, and a line per phase and host event (logs, CI, a pipe).
import type { RunListener } from './distribute.js'

/** Bytes in binary units: `512 B`, `1.5 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}

/** A line per phase detail and host event, stamped with the seconds since the start; `quiet`: none (failures show once, in the summary). */
export function eventLines(opts: { quiet: boolean; out: (line: string) => void }): RunListener {
  const began = Date.now()
  const stamp = () => `[${((Date.now() - began) / 1000).toFixed(1).padStart(6)}s]`
  return {
    onPhase(phase, detail) {
      if (!opts.quiet && detail) opts.out(`${stamp()} ${phase}: ${detail}`)
    },
    onHostState(host, state, detail) {
      if (!opts.quiet) opts.out(`${stamp()} ${host}: ${state}${detail ? `: ${detail}` : ''}`)
    },
  }
}
