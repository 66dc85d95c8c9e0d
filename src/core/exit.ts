// How a front end's work process ends once its work and output are done, and what it tells the process
// that supervises it (supervise.ts).

/** The signals the front ends handle (stop cleanly, again to quit at once) and the supervisor passes on. */
export const RELAYED_SIGNALS = ['SIGINT', 'SIGTERM'] as const

/** A message from the work process to its supervisor. */
export interface FromWork {
  /** The work got this signal itself (from the process group): the supervisor does not send it again. */
  heard?: NodeJS.Signals
  /** The work is done and its output written; this is the exit code. */
  done?: number
}

/**
 * The event loop runs this long more before the exit. Node's shutdown joins V8's helper threads, and a
 * helper still compiling can wait there for a collection only the main thread runs, which never comes
 * (nodejs/node#54918; seen three times in a day here, node 24.21: the report printed, then no exit).
 * While the loop runs, V8 can still serve such a helper. The supervisor ends a process that hangs anyway.
 */
const EXIT_GRACE_MS = 250

function tell(message: FromWork): void {
  // No supervisor (the work file run directly) or one already gone: nothing to tell.
  if (process.connected) process.send?.(message, undefined, {}, () => {})
}

/** Tells the supervisor that this process got `sig`; the front ends' signal handlers call it. */
export function heard(sig: NodeJS.Signals): void {
  tell({ heard: sig })
}

/** Exits with `code` (or process.exitCode) after EXIT_GRACE_MS, even if a library keeps a handle open. */
export function leave(code?: number): void {
  tell({ done: code ?? Number(process.exitCode ?? 0) })
  // Not process.exit(undefined): an argument, even undefined, replaces process.exitCode (setFailed's 1).
  setTimeout(() => (code === undefined ? process.exit() : process.exit(code)), EXIT_GRACE_MS)
}

/** A supervisor that goes away (killed) takes the run with it: the work stops as if sent SIGTERM. */
export function stopWithSupervisor(): void {
  if (process.connected) process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'))
}
