// The messages between the runner and an agent: one JSON object per line, on the agent's stdin and stdout.

/** Version of this message set; the runner refuses an agent that speaks another. */
export const PROTOCOL_VERSION = 4

/** Runner → agent: everything the agent needs for one run, sent once as the first line. */
export interface StartMessage {
  t: 'start'
  protocol: number
  /** The .torrent (bencoded, base64), announcing only to `trackerUrl`. */
  torrent: string
  /** Absolute destination path on this host. */
  destination: string
  /** SHA-256 of the whole file, hex. */
  sha256: string
  /** File size in bytes. */
  size: number
  /** Permission bits to give the delivered file, or a folder's top folder (e.g. 0o644). */
  mode: number
  /** What the user asked the delivered file (or a folder's every entry) to get; absent fields are not asked. */
  attributes?: { mode?: number; owner?: string; group?: string }
  /** Set when a folder is pushed: the payload is its tar stream, unpacked beside the destination and switched in. */
  tree?: TreeDelivery
  /**
   * Ways to the runner's seeder and tracker, in order of preference: each gets `probeMs` of head start
   * over the next, and the first whose seeder accepts a TCP connection is used for the whole run.
   */
  routes: RunnerRoute[]
  /** Head start of each route over the next, in milliseconds. */
  probeMs: number
  /** The runner seeder's peer id (hex): how the agent tells the runner's wire from a host's. */
  runnerId: string
  /**
   * The run's secret (base64), fresh for every run and sent only over SSH: every peer connection proves
   * it knows it both ways before anything moves, and keys its encryption from it. Never logged.
   */
  secret: string
  /** Whether peer records are encrypted (the default); false only where the user opted out. */
  encrypt: boolean
  /** Seconds without a line from the runner after which the agent gives up (heartbeat). */
  idleTimeoutSeconds: number
  /** Progress line interval in milliseconds. */
  progressMs: number
  /** Log name of this host, for the agent's own messages. */
  host: string
  /** This host's place among the hosts: it walks the pieces from `index/of` of the way in, so hosts start apart. */
  spread: { index: number; of: number }
  /** Bytes per second this host may receive, and may send, over all its peers (--limit-rate); absent: no limit. */
  limitRate?: number
}

/** How a folder lands. */
export interface TreeDelivery {
  /** SHA-256 of the folder's manifest (engine/tree.ts): a destination with the same digest is left as it is. */
  digest: string
  /** Keep this many releases: the destination holds releases/<release> and a `current` link (absent: the folder itself is swapped). */
  releases?: number
  /** This run's release name, the same on every host: UTC time and a run tag, so names sort by age. */
  release: string
}

/** One way from a host to the runner's services. */
export interface RunnerRoute {
  /** direct: the runner's address as this host reaches it; ssh: a port on the host's loopback forwarded over its SSH connection. */
  via: 'direct' | 'ssh'
  /** The seeder, `addr:port` (IPv6 in brackets). */
  seedPeer: string
  /** The tracker's announce URL on this route. */
  announce: string
}

/** Runner → agent: still here (sent every few seconds). */
export interface PingMessage { t: 'ping' }
/** Runner → agent: every host has settled; stop seeding and exit. */
export interface ReleaseMessage { t: 'release' }
/** Runner → agent: this run is over for this host (failed for good, interrupted): remove partial data and exit. */
export interface AbortMessage { t: 'abort'; reason: string }

export type RunnerMessage = StartMessage | PingMessage | ReleaseMessage | AbortMessage

/** Agent → runner: the agent started and understood the start message. */
export interface ReadyEvent {
  t: 'ready'
  protocol: number
  node: string
  pid: number
  /** Bytes already present and verified (resumed or identical file). */
  have: number
  /** The route the agent took to the runner (absent when the file was already in place). */
  via?: RunnerRoute['via']
}
/** Agent → runner: periodic download/upload figures. */
export interface ProgressEvent {
  t: 'progress'
  /** Verified bytes on this host. */
  have: number
  downloaded: number
  uploaded: number
  /** Bytes received from the runner's seeder. */
  fromRunner: number
  peers: number
  /** Download rate, bytes per second. */
  rate: number
}
/** Agent → runner: the destination holds the complete, verified file. */
export interface DoneEvent {
  t: 'done'
  /** False when the destination already held the identical file. */
  transferred: boolean
  downloaded: number
  fromRunner: number
  seconds: number
}
/** Stable failure causes, each with a fix the runner can name. */
export type AgentErrorCode =
  | 'no-space'
  | 'not-writable'
  | 'no-folder'
  | 'not-a-file'
  | 'read-only-fs'
  | 'checksum'
  | 'bad-peers'
  | 'unreachable'
  | 'busy'
  | 'protocol'
  | 'io'
  | 'internal'
  /** Nothing from the runner (messages or pieces) for the start message's idleTimeoutSeconds. */
  | 'runner-silent'
/** Agent → runner: this host cannot finish; the agent exits after sending it. */
export interface ErrorEvent {
  t: 'error'
  code: AgentErrorCode
  message: string
}
/** Agent → runner: a line for the host's log. */
export interface LogEvent { t: 'log'; message: string }
/** Agent → runner: still working (sent at its start, then every few seconds in every phase, hashing included), and its PID. */
export interface AliveEvent { t: 'alive'; pid: number }

export type AgentEvent = ReadyEvent | ProgressEvent | DoneEvent | ErrorEvent | LogEvent | AliveEvent

/** Seconds between the agent's `alive` lines; the runner gives up on an agent silent for 12 of them. */
export const ALIVE_SECONDS = 5

/** Agent exit codes the runner tells apart. */
export const AGENT_EXIT = {
  ok: 0,
  failed: 1,
  /** The bootstrap found no agent file, or one whose hash differs: upload it and run again. */
  missingAgent: 97,
  protocol: 98,
} as const

/** One message as a line. */
export function encodeLine(message: RunnerMessage | AgentEvent): string {
  return JSON.stringify(message) + '\n'
}

/**
 * The longest line each side reads, so a peer that never ends a line (a shell start-up file printing
 * without end, a broken agent) can't grow the reader's memory without bound. Runner → agent lines carry
 * the .torrent: 16 MiB holds the piece hashes of a file of 9 TiB. Agent → runner lines are events
 * of a few hundred bytes; 1 MiB leaves room for any error message.
 */
export const MAX_LINE_BYTES = { toAgent: 16 * 1024 * 1024, toRunner: 1024 * 1024 } as const

/**
 * Splits a byte stream into lines and parses each as JSON; unparsable lines are passed on as text. A line
 * longer than `maxBytes` calls `onTooLong` once with the bytes seen so far, and the rest of the stream is
 * ignored: whatever sends it does not speak this protocol.
 */
export function lineReader(
  onMessage: (msg: unknown) => void,
  onText: (line: string) => void,
  limit: { maxBytes: number; onTooLong: (bytes: number) => void },
): (chunk: Buffer | string) => void {
  let pending: Buffer[] = []
  let pendingBytes = 0
  let broken = false
  const tooLong = (bytes: number): boolean => {
    if (bytes <= limit.maxBytes) return false
    broken = true
    pending = []
    limit.onTooLong(bytes)
    return true
  }
  const handle = (line: string) => {
    if (line === '') return
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch {
      return onText(line)
    }
    if (parsed !== null && typeof parsed === 'object' && typeof (parsed as { t?: unknown }).t === 'string') onMessage(parsed)
    else onText(line)
  }
  return (chunk) => {
    if (broken) return
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    let start = 0
    let nl: number
    // Lines are cut as bytes and decoded whole, so a character split between chunks arrives intact.
    while ((nl = bytes.indexOf(0x0a, start)) >= 0) {
      const part = bytes.subarray(start, nl)
      if (tooLong(pendingBytes + part.length)) return
      const line = pending.length > 0 ? Buffer.concat([...pending, part]) : part
      pending = []
      pendingBytes = 0
      start = nl + 1
      handle(line.toString('utf8').trim())
    }
    if (start < bytes.length) {
      if (tooLong(pendingBytes + bytes.length - start)) return
      pending.push(Buffer.from(bytes.subarray(start)))
      pendingBytes += bytes.length - start
    }
  }
}
