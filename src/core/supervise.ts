// The process a front end's entry starts as: it runs the work in a child node process and exits with the
// child's code. Node 24 can deadlock in its own shutdown after the work is done (nodejs/node#54918: a V8
// compile job waits for a collection only the main thread could run, and the main thread is joining it);
// a push that reported and never exits would hang the user's CI step. This process does no work of its
// own, so nothing of V8's is in flight when it exits.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { RELAYED_SIGNALS, type FromWork, type StopSignal, type ToWork } from './exit.js'

/** After the child says it is exiting (its work done, its output written), how long that may take before it is ended. */
const EXIT_DEADLINE_MS = 10_000

/**
 * Runs `file` (a name beside `entry`, the caller's import.meta.url) with this process's arguments and exits
 * as it does. `name` starts this process's own messages.
 */
export function supervise(file: string, entry: string, name: string): void {
  // Resolved here, not at the call: the bundler would turn a literal new URL(file, import.meta.url) into a build-time path.
  const script = fileURLToPath(new URL(file, entry))
  // Node's own flags go along (a heap limit, say), but not the inspector's: its port is this process's.
  const flags = process.execArgv.filter((f) => !f.startsWith('--inspect'))
  // The child stays in this process group: a terminal's Ctrl-C or Ctrl-Z, or a CI runner killing the job's
  // group, reaches the work as it would a single process.
  const child = spawn(process.execPath, [...flags, script, ...process.argv.slice(2)], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] })
  // Passed on as a message: the work tells it from its own copy of a group signal (exit.ts, onStopSignal).
  const passOn = (sig: StopSignal) => () => {
    if (child.connected) child.send({ signal: sig } satisfies ToWork)
    else if (child.exitCode === null && child.signalCode === null) child.kill(sig)
  }
  for (const sig of RELAYED_SIGNALS) process.on(sig, passOn(sig))
  let reported: number | undefined
  child.on('error', (err) => {
    process.stderr.write(`${name}: could not start ${script}: ${err.message}\n`)
    process.exit(70)
  })
  child.on('message', (m: FromWork) => {
    if (m.exiting === undefined || reported !== undefined) return
    reported = m.exiting
    setTimeout(() => {
      process.stderr.write(`${name}: node did not exit ${EXIT_DEADLINE_MS / 1000} s after the work ended (nodejs/node#54918); ended it, the result stands\n`)
      child.kill('SIGKILL')
    }, EXIT_DEADLINE_MS).unref()
  })
  child.on('exit', (code, signal) => {
    if (code !== null) process.exit(code)
    if (reported !== undefined) process.exit(reported)
    // Killed before it could say: die of the same signal, so that a calling shell sees what happened.
    for (const sig of RELAYED_SIGNALS) process.removeAllListeners(sig)
    process.kill(process.pid, signal!)
  })
}
