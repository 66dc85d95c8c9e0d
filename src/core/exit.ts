// How a front end's work process ends once its work and output are done, and what it tells the process
// that supervises it (supervise.ts).

/** The signals the front ends handle (stop cleanly, again to quit at once) and the supervisor passes on. */
export const RELAYED_SIGNALS = ['SIGINT', 'SIGTERM'] as const

/** A message from the work process to its supervisor. */
export interface FromWork {
  /** The process is exiting with this code: the supervisor ends it if node's own shutdown hangs. */
  exiting?: number
}

/** A message from the supervisor to the work process. */
export interface ToWork {
  /** The supervisor was sent this signal; the work may have been sent it too (see onStopSignal). */
  signal?: StopSignal
}

export type StopSignal = (typeof RELAYED_SIGNALS)[number]

/** A signal the supervisor passes on is taken for one the work got itself if they come this close. */
const SAME_SIGNAL_MS = 1000
/** How long a passed-on signal waits for the work's own copy before it counts as a signal of its own. */
const RELAY_WAIT_MS = 300

let stopHandler: ((sig: StopSignal) => void) | undefined
/** When the work last got each signal itself, not yet matched by the supervisor's message. */
const gotAt = new Map<StopSignal, number>()
/** Passed-on signals waiting for the work's own copy. */
const waiting = new Map<StopSignal, NodeJS.Timeout[]>()

function gotItself(sig: StopSignal): void {
  const timer = waiting.get(sig)?.shift()
  if (timer) clearTimeout(timer)
  else gotAt.set(sig, performance.now())
  stopHandler?.(sig)
}

function passedOn(sig: StopSignal): void {
  const at = gotAt.get(sig)
  if (at !== undefined && performance.now() - at < SAME_SIGNAL_MS) return void gotAt.delete(sig)
  const timers = waiting.get(sig) ?? []
  waiting.set(sig, timers)
  timers.push(setTimeout(() => {
    timers.shift()
    // No handler yet (or any more): the signal's own default, as if sent here.
    if (stopHandler) stopHandler(sig)
    else process.kill(process.pid, sig)
  }, RELAY_WAIT_MS))
}

/**
 * Calls `handler` once for each SIGINT or SIGTERM sent to this run; returns what stops that. A signal to the
 * process group (a terminal's Ctrl-C, a CI runner stopping the job) reaches the work and its supervisor
 * both; one to the supervisor's PID alone (GitHub's runner cancelling the step) reaches only it. The
 * supervisor passes each on as a message, and a message that comes within SAME_SIGNAL_MS of the work's own
 * copy is that copy: both are read in the same turn of the event loop even when it was busy, so the work
 * sees each signal once (a second one means "quit at once" to the front ends).
 */
export function onStopSignal(handler: (sig: StopSignal) => void): () => void {
  stopHandler = handler
  for (const sig of RELAYED_SIGNALS) process.on(sig, gotItself)
  return () => {
    stopHandler = undefined
    for (const sig of RELAYED_SIGNALS) process.off(sig, gotItself)
  }
}

/**
 * The event loop runs this long more before the exit. Node's shutdown joins V8's helper threads, and a
 * helper still compiling can wait there for a collection only the main thread runs, which never comes
 * (nodejs/node#54918; seen three times in a day here, node 24.21: the report printed, then no exit).
 * While the loop runs, V8 can still serve such a helper. The supervisor ends a process that hangs anyway.
 */
const EXIT_GRACE_MS = 250

/** Exits with `code` (or process.exitCode) after EXIT_GRACE_MS, even if a library keeps a handle open. */
export function leave(code?: number): void {
  // Not process.exit(undefined): an argument, even undefined, replaces process.exitCode (setFailed's 1).
  setTimeout(() => (code === undefined ? process.exit() : process.exit(code)), EXIT_GRACE_MS)
}

/**
 * Under a supervisor: every exit (leave, a second signal's quit, an internal error, a crash) tells it the
 * code before node's shutdown, where the hang is; and a supervisor that goes away (killed, even before this
 * ran) takes the run with it: the work stops as on SIGTERM.
 */
export function reportToSupervisor(): void {
  if (!process.send) return // run directly: no supervisor
  if (!process.connected) return void process.kill(process.pid, 'SIGTERM')
  process.on('exit', (code) => {
    if (process.connected) process.send?.({ exiting: code } satisfies FromWork)
  })
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'))
  process.on('message', (m: ToWork) => {
    if (m.signal && (RELAYED_SIGNALS as readonly string[]).includes(m.signal)) passedOn(m.signal)
  })
  // Listeners hold the channel open; the work's end is decided by leave() or an exit, not by the channel.
  process.channel?.unref()
}
