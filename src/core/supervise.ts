// The process a front end's entry starts as: it runs the work in a child node process and exits with the
// child's code. Node 24 can deadlock in its own shutdown after the work is done (nodejs/node#54918: a V8
// compile job waits for a collection only the main thread could run, and the main thread is joining it);
// a push that reported and never exits would hang the user's CI step. This process does no work of its
// own, so nothing of V8's is in flight when it exits.
import { spawn } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { RELAYED_SIGNALS, type FromWork } from './exit.js'

/** After the child says its work is done and its output written, how long its exit may take before it is ended. */
const EXIT_DEADLINE_MS = 10_000
/**
 * A signal sent to the process group (a terminal's Ctrl-C, a CI runner stopping the job's group) reaches
 * the child too; one sent to this PID alone does not. The child says which signals it got itself; one it
 * does not mention within this time is passed on, so that each signal reaches the work exactly once.
 */
const HEARD_WITHIN_MS = 1_000

/**
 * Runs `file` (a name beside `entry`, the caller's import.meta.url) with this process's arguments and exits
 * as it does. `name` starts this process's own messages.
 */
export function supervise(file: string, entry: string, name: string): void {
  // Resolved here, not at the call: the bundler would turn a literal new URL(file, import.meta.url) into a build-time path.
  const script = fileURLToPath(new URL(file, entry))
  const child = spawn(process.execPath, [...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  })
  let reported: number | undefined
  child.on('error', (err) => {
    process.stderr.write(`${name}: could not start ${script}: ${err.message}\n`)
    process.exit(70)
  })
  child.on('message', (m: FromWork) => {
    if (m.heard) heard(m.heard)
    if (m.done === undefined) return
    reported = m.done
    setTimeout(() => {
      process.stderr.write(`${name}: node did not exit ${EXIT_DEADLINE_MS / 1000} s after the work ended (nodejs/node#54918); ended it, the result stands\n`)
      child.kill('SIGKILL')
    }, EXIT_DEADLINE_MS).unref()
  })
  child.on('exit', (code, signal) => {
    if (code !== null) process.exit(code)
    // Killed: the code it reported if it got that far, else the shell's 128 + signal number.
    process.exit(reported ?? 128 + (os.constants.signals[signal as NodeJS.Signals] ?? 0))
  })

  // Per signal: this process's signals not yet matched by the child's, each with the timer that passes it on;
  // and the times the child got one that this process had not (yet) got.
  const waiting = new Map<NodeJS.Signals, NodeJS.Timeout[]>()
  const ahead = new Map<NodeJS.Signals, number[]>()
  const recent = (times: number[]) => times.filter((t) => Date.now() - t < HEARD_WITHIN_MS)
  function heard(sig: NodeJS.Signals): void {
    const timer = waiting.get(sig)?.shift()
    if (timer) clearTimeout(timer)
    else ahead.set(sig, [...recent(ahead.get(sig) ?? []), Date.now()])
  }
  for (const sig of RELAYED_SIGNALS) {
    process.on(sig, () => {
      const early = recent(ahead.get(sig) ?? [])
      if (early.length > 0) return void ahead.set(sig, early.slice(1))
      const timers = waiting.get(sig) ?? []
      timers.push(setTimeout(() => {
        timers.shift()
        if (child.exitCode === null && child.signalCode === null) child.kill(sig)
      }, HEARD_WITHIN_MS))
      waiting.set(sig, timers)
    })
  }
}
