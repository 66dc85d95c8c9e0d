// Runs the benchmark's `floor` method (bench/floor.ts) in a cluster: a receiver on every host (its network and mount namespaces, the hosts' node), the sender in the runner's namespace.
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import type { Cluster } from '../test/support/cluster.js'
import { inGroup, runnerNice, type PointGroups } from './cpu.js'

/** build/bench/floor.js, beside this file once compiled; hosts see the repository as this machine does. */
const floorJs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'floor.js')
/** Each receiver listens on its own cluster address only. */
const PORT = 7070
/** A root login's environment, as the agents get it: `node` is what the hosts' PATH finds. */
const HOST_ENV: NodeJS.ProcessEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' }

export interface FloorOutcome {
  /** From spawning the sender to the last host's `closed` line (every byte written, file closed). */
  seconds?: number
  timedOut: boolean
  error?: string
}

/** A child whose stdout lines are awaited by content; its exit is a promise. */
class Proc {
  readonly child: ChildProcess
  private out = ''
  private err = ''
  readonly exited: Promise<string>
  private waiters: { line: string; resolve: (at: number) => void }[] = []

  constructor(
    readonly name: string,
    argv: string[],
    env: NodeJS.ProcessEnv,
  ) {
    // Own process group (detached), so a timeout kills it and anything it started by its PID.
    this.child = spawn(argv[0]!, argv.slice(1), { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout!.on('data', (d: Buffer) => {
      const at = performance.now()
      this.out += d.toString()
      for (const w of [...this.waiters]) {
        if (this.out.split('\n').includes(w.line)) {
          this.waiters.splice(this.waiters.indexOf(w), 1)
          w.resolve(at)
        }
      }
    })
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()))
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => resolve(`${this.name}: ${e.message}`))
      this.child.on('close', (code, sig) => resolve(code === 0 ? '' : `${this.name}: exit ${code ?? sig} ${this.err.trim().split('\n').slice(-3).join(' | ')}`.trim()))
    })
  }

  /** When the line was read; rejects if the process ends first. */
  line(text: string): Promise<number> {
    const seen = new Promise<number>((resolve) => {
      if (this.out.split('\n').includes(text)) resolve(performance.now())
      else this.waiters.push({ line: text, resolve })
    })
    return Promise.race([seen, this.exited.then((why) => Promise.reject(new Error(why || `${this.name}: exited before "${text}"`)))])
  }

  kill(): void {
    if (this.child.pid && this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(-this.child.pid, 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }
  }
}

function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error(`timed out after ${Math.round(ms / 1000)} s waiting for ${what}`), { timedOut: true })), ms)))
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/**
 * Pushes `file` to `destination` on every host by the ideal schedule. The receivers start first and
 * must all be listening before the clock starts; the run ends when every host has closed its file.
 * Every process is killed by its PID (process group) if it is still there at the end.
 */
export async function runFloor(cluster: Cluster, file: string, size: number, destination: string, groups: PointGroups | undefined, timeoutMs: number): Promise<FloorOutcome> {
  const addresses = cluster.hosts.map((h) => h.address)
  const limit = ['--timeout-ms', String(timeoutMs)]
  const procs: Proc[] = []
  try {
    for (const h of cluster.hosts) {
      // nsenter into the mount and network namespaces of the host's sshd: the host's private /srv.
      const argv = ['nsenter', '-t', String(h.sshdPid), '-m', '-n', 'node', floorJs, 'host', String(h.index), destination, String(size), String(PORT), ...addresses, ...limit]
      procs.push(new Proc(h.alias, inGroup(groups?.hosts[h.index], argv), HOST_ENV))
    }
    await deadline(Promise.all(procs.map((p) => p.line('listening'))), 20_000, 'the floor receivers to listen')
    const t0 = performance.now()
    const send = ['ip', 'netns', 'exec', cluster.runnerNetns, process.execPath, floorJs, 'send', file, String(size), ...addresses.map((a) => `${a}:${PORT}`), ...limit]
    const sender = new Proc('runner', inGroup(groups?.runner, send, runnerNice(cluster.hosts.length)), cluster.env())
    procs.push(sender)
    // A sender that fails makes the receivers wait for ever: its exit ends the wait too.
    const senderFailed = sender.exited.then((why) => (why ? Promise.reject(new Error(why)) : new Promise<never>(() => undefined)))
    const closedAt = await deadline(Promise.race([Promise.all(procs.slice(0, -1).map((p) => p.line('closed'))), senderFailed]), timeoutMs, 'every host to close its file')
    const seconds = (Math.max(...closedAt) - t0) / 1000
    // Receivers exit once their forwards are flushed, the sender once every slice is acknowledged.
    const exits = await deadline(Promise.all(procs.map((p) => p.exited)), 15_000, 'the floor processes to exit')
    const bad = exits.filter(Boolean)
    return { seconds, timedOut: false, error: bad.length ? bad.join('; ') : undefined }
  } catch (err) {
    return { timedOut: Boolean((err as { timedOut?: boolean }).timedOut), error: (err as Error).message }
  } finally {
    for (const p of procs) p.kill()
    await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 5000))])
  }
}
