// How the front ends end the process once their work and output are done.

/**
 * The event loop runs this long more before the exit. Node's shutdown joins V8's helper threads, and a
 * helper still compiling or sweeping can wait there for a collection only the main thread runs, which
 * never comes: the process hangs with its work done (nodejs/node#54918; seen three times in a day here,
 * node 24.21: the report printed, 4/4 or 3/3 verified, then no exit). While the loop runs, V8 can still
 * serve such a helper, and tasks begun by the last burst of work finish.
 */
const EXIT_GRACE_MS = 250

/** Exits with `code` (or process.exitCode) after EXIT_GRACE_MS, even if a library keeps a handle open. */
export function leave(code?: number): void {
  // Not process.exit(undefined): an argument, even undefined, replaces process.exitCode (setFailed's 1).
  setTimeout(() => (code === undefined ? process.exit() : process.exit(code)), EXIT_GRACE_MS)
}
