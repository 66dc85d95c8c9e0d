// What the main step leaves for the post step (core.saveState names), and how the post step recognises the main process.
import fs from 'node:fs'

export const STATE = {
  /** PID of the main step's process. */
  mainPid: 'main-pid',
  /** Its start time (field 22 of /proc/<pid>/stat), so a reused PID is never signalled. */
  mainStart: 'main-start',
  /** Private folder holding the key and known_hosts files. */
  secretsDir: 'secrets-dir',
} as const

/** Start time of a process in clock ticks since boot, or undefined when it is gone or /proc is absent. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces and parentheses) start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}
