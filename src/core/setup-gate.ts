// Holds the runner's pieces back while hosts are being set up, so their SSH sessions have its link to themselves.
import type { HostState } from './host-run.js'

/** A host whose TCP and SSH handshake alone takes longer holds nothing: on an idle link it is dead or far. */
export const SLOW_CONNECT_MS = 5_000
/** The longest the pieces wait for the hosts' set-up. */
export const MAX_HOLD_MS = 60_000

/**
 * On a slow uplink the runner's pieces fill the link's queue, and the hosts set up after the first ones
 * lose the packets of their SSH connects and set-up commands (200 hosts on 4 Mbit/s: 65 of 200 set-ups
 * timed out without this hold, none with it, one run each). So the seeder sends
 * nothing until every host has finished its first set-up: its agent fetching, or failed, or waiting for a
 * retry. With up to --concurrency hosts this costs about nothing: they are set up together, mostly while
 * the file is hashed, and agents cannot trade before the runner sends. With more, the first waves wait
 * for the last wave's set-up (47 s for 200 hosts on this 2-core test machine; at most MAX_HOLD_MS), a
 * cost on fast links where the set-ups would not have suffered. Retries come later and are not waited for.
 */
export class SetupGate {
  /** Hosts still holding the gate. */
  private readonly holding: Set<string>
  private readonly slow = new Map<string, NodeJS.Timeout>()
  private readonly waiters: (() => void)[] = []
  private readonly deadline: NodeJS.Timeout
  private opened = false
  private readonly slowConnectMs: number

  constructor(hosts: string[], limits = { slowConnectMs: SLOW_CONNECT_MS, maxHoldMs: MAX_HOLD_MS }) {
    this.holding = new Set(hosts)
    this.slowConnectMs = limits.slowConnectMs
    this.deadline = setTimeout(() => this.open(), limits.maxHoldMs)
    this.deadline.unref()
    this.check()
  }

  /** Runs `fn` once the gate is open (at once if it is). */
  whenOpen(fn: () => void): void {
    if (this.opened) fn()
    else this.waiters.push(fn)
  }

  /** A host's state changed (hostRun's onState). */
  onState(host: string, state: HostState): void {
    clearTimeout(this.slow.get(host))
    this.slow.delete(host)
    if (!this.holding.has(host)) return
    if (state === 'connecting') {
      const t = setTimeout(() => this.release(host), this.slowConnectMs)
      t.unref()
      this.slow.set(host, t)
    } else if (state !== 'starting') this.release(host)
  }

  /** Opens it whatever the hosts' states (the run ends). */
  open(): void {
    if (this.opened) return
    this.opened = true
    this.holding.clear()
    clearTimeout(this.deadline)
    for (const t of this.slow.values()) clearTimeout(t)
    this.slow.clear()
    for (const fn of this.waiters.splice(0)) fn()
  }

  private release(host: string): void {
    this.holding.delete(host)
    this.check()
  }

  private check(): void {
    if (this.holding.size === 0) this.open()
  }
}
