// The result of a run, shared by every front end (CLI text and JSON, Action outputs and summary).

export type HostStatus = 'ok' | 'failed' | 'timed-out' | 'interrupted'

/** What happened on one host. */
export interface HostReport {
  host: string
  status: HostStatus
  /** False when the host already held the identical file. */
  transferred: boolean
  attempts: number
  seconds: number
  /** Bytes this host downloaded (from the runner and from other hosts). */
  downloaded: number
  /** Of those, bytes from the runner. */
  fromRunner: number
  /** How the host reached the runner's seeder and tracker: directly, or through its SSH connection. */
  runnerVia?: 'direct' | 'ssh'
  /** Bytes of the Node runtime herd uploaded to this host (it had no usable node), when any. */
  runtimeBytes?: number
  /** The post-command's exit code, when it ran and failed. */
  postCommandExit?: number
  /** Why it failed, with the fix; absent when ok. */
  cause?: string
  /** Stable failure kind (connect, host-key-unknown, auth, no-space, ...). */
  kind?: string
  /** The host's log file, when --log-dir was given. */
  logFile?: string
}

/** What happened on every host, and the totals. */
export interface Report {
  file: string
  destination: string
  size: number
  sha256: string
  startedAt: string
  seconds: number
  /** Bytes the runner's seeder uploaded. */
  bytesFromRunner: number
  /** Bytes of Node runtime uploaded to hosts that had no usable node (0 when none needed it). */
  runtimeBytes: number
  hosts: HostReport[]
  succeeded: string[]
  failed: string[]
  /** Set when the run was cut short: by a signal or by --timeout. */
  interrupted?: 'SIGINT' | 'SIGTERM' | 'timeout'
  exitCode: number
}

/** Documented exit codes. */
export const EXIT = {
  /** Every host has the file. */
  ok: 0,
  /** Some host failed; the others still got the file. */
  someFailed: 1,
  /** Bad usage or input, before any host was touched. */
  usage: 2,
  /** Interrupted by SIGINT (128 + 2) / SIGTERM (128 + 15). */
  sigint: 130,
  sigterm: 143,
} as const

/** `1 host`, `2 hosts`: a count with its noun, for every front end's sentences. */
export function count(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`
}

export function exitCodeFor(hosts: HostReport[], interrupted?: Report['interrupted']): number {
  if (interrupted === 'SIGINT') return EXIT.sigint
  if (interrupted === 'SIGTERM') return EXIT.sigterm
  return hosts.every((h) => h.status === 'ok') ? EXIT.ok : EXIT.someFailed
}
