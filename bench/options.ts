// The benchmark's cases, command line, machine description and the notes printed under its table.
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { repoRoot } from '../test/support/herd.js'
import type { CaseSpec, Machine } from './model.js'

export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

export const DEFAULT_CASES: CaseSpec[] = [
  { name: 'fleet', purpose: 'herd against scp at a common link speed', hosts: [4, 8, 16], rateMbit: 100, sizeMiB: 200, scp: true },
  {
    name: 'sweep',
    purpose: 'scaling with N at a fifth of the fleet case\'s link rate, so the machine carries fewer bytes per second (at N = 32 its 2 cores are busy again)',
    hosts: [4, 8, 16, 32],
    rateMbit: 20,
    sizeMiB: 50,
    scp: false,
    scpNote: 'scp not run by default (--scp runs it): the runner\'s link carries every copy, so each scp method needs at least N × bound',
  },
  { name: 'memory', purpose: 'memory with a 2 GiB file', hosts: [4], rateMbit: 1000, sizeMiB: 2048, scp: false, scpNote: 'this case measures memory' },
  {
    name: 'fast',
    purpose: 'unshaped links, standing for a datacenter\'s 10-25 GbE: the CPU sets the pace, so herd against the floor and parallel scp',
    hosts: [1, 2, 4],
    sizeMiB: 1024,
    scp: true,
    sequentialScp: false,
  },
]
/** Cases run only when named (`--case scale`): they take the whole machine for a long while. */
export const NAMED_CASES: CaseSpec[] = [
  {
    name: 'scale',
    purpose: '200 hosts, each its own sshd in its own namespace on a 4 Mbit/s link: what breaks at that size',
    hosts: [200],
    rateMbit: 4,
    sizeMiB: 20,
    scp: false,
    scpNote: 'scp not run: at N = 200 the runner\'s link would carry 200 copies',
  },
]
const ALIASES: Record<string, string> = { a: 'fleet', b: 'sweep', c: 'memory', d: 'fast', e: 'scale' }

const USAGE = `usage: npm run bench -- [options]
  --case NAMES      fleet (A), sweep (B), memory (C), fast (D), scale (E: 200 hosts, only when named); comma-separated (default: the first four)
  --hosts 4,8       host counts (with --case: override that case's; alone: one custom case)
  --rate MBIT       link rate in Mbit/s (tbf, every link, both directions); 0: no shaping
  --size-mib MIB    file size
  --scp / --no-scp  run / skip the scp baselines in every selected case (fast runs parallel scp only)
  --out FILE        results JSON (default bench/results/latest.json); the Markdown table goes beside it (.md)
  --chart FILE      SVG chart (default: chart.svg beside --out)
  --log-dir DIR     keep herd's stderr and per-host logs under DIR/<case>-n<N>/
  --render FILE     only redraw the Markdown table and the chart from a results JSON (beside it)`

export interface Options {
  machine: Machine
  cases: CaseSpec[]
  out: string
  chart: string
  logDir?: string
  /** Redraw from this results JSON instead of running. */
  render?: string
}

export function parseOptions(argv: string[]): Options {
  const values = new Map<string, string>()
  let scp: boolean | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE)
      process.exit(0)
    } else if (arg === '--scp' || arg === '--no-scp') scp = arg === '--scp'
    else if (['--case', '--hosts', '--rate', '--size-mib', '--out', '--chart', '--log-dir', '--render'].includes(arg)) {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`)
      values.set(arg, v)
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`)
  }
  const positive = (name: string, v: string) => {
    const n = Number(v)
    if (!(n > 0) || !Number.isFinite(n)) throw new Error(`${name} must be a positive number, got ${v}`)
    return n
  }
  const hosts = values.get('--hosts')?.split(',').map((v) => {
    const n = positive('--hosts', v)
    if (!Number.isInteger(n) || n > 240) throw new Error(`--hosts takes whole numbers 1..240 (one /24 of cluster addresses), got ${v}`)
    return n
  })
  // --rate 0 asks for unshaped links (the fast case's).
  const rate = values.has('--rate') ? (Number(values.get('--rate')) === 0 ? 0 : positive('--rate', values.get('--rate')!)) : undefined
  const size = values.has('--size-mib') ? positive('--size-mib', values.get('--size-mib')!) : undefined
  let cases: CaseSpec[]
  if (values.has('--case')) {
    cases = values.get('--case')!.split(',').map((raw) => {
      const name = ALIASES[raw.toLowerCase()] ?? raw.toLowerCase()
      const found = [...DEFAULT_CASES, ...NAMED_CASES].find((c) => c.name === name)
      if (!found) throw new Error(`--case: no case ${raw}; choose fleet, sweep, memory, fast or scale`)
      return { ...found }
    })
  } else if (hosts || rate !== undefined || size) {
    cases = [{ ...DEFAULT_CASES[0]!, name: 'custom', purpose: 'custom case from the command line' }]
  } else cases = DEFAULT_CASES.map((c) => ({ ...c }))
  for (const c of cases) {
    if (hosts) c.hosts = hosts
    if (rate !== undefined) c.rateMbit = rate || undefined
    if (size) c.sizeMiB = size
    if (scp !== undefined) {
      c.scp = scp
      c.scpNote = scp ? undefined : 'scp not run (--no-scp)'
    }
  }
  const render = values.has('--render') ? path.resolve(values.get('--render')!) : undefined
  const out = path.resolve(values.get('--out') ?? render ?? path.join(repoRoot, 'bench', 'results', 'latest.json'))
  const chart = path.resolve(values.get('--chart') ?? path.join(path.dirname(out), 'chart.svg'))
  const logDir = values.has('--log-dir') ? path.resolve(values.get('--log-dir')!) : undefined
  return { machine: describeMachine(), cases, out, chart, logDir, render }
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 })
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? ''
}

function describeMachine(): Machine {
  return {
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: os.totalmem() / GiB,
    kernel: os.release(),
    node: process.version,
    openssh: firstLine('ssh', ['-V']),
    hostname: os.hostname(),
  }
}

/** Seconds one copy over one link takes (the bound); on unshaped links, none. */
export const boundOf = (spec: CaseSpec): number | undefined => (spec.rateMbit ? (spec.sizeMiB * MiB * 8) / (spec.rateMbit * 1e6) : undefined)

/**
 * One copy's time for timeouts: the bound on shaped links; on unshaped ones the copy at 10 MiB/s, far
 * below what this machine does, so only a stuck method reaches a timeout.
 */
export const budgetOf = (spec: CaseSpec): number => boundOf(spec) ?? (spec.sizeMiB * MiB) / (10 * MiB)

export const linkText = (rateMbit: number | undefined): string => (rateMbit ? `${rateMbit} Mbit/s` : 'unshaped')

export const NOTES = [
  'One run per point (no repetition); the 1-minute load average before each case is in the JSON: other work on the machine shows there as noise.',
  'bound = file size × 8 / link rate, with the nominal tbf rate given to tc (every link, both directions, the runner\'s included). TCP/IP headers take about 5 % of it, so even one perfect copy lands a little above the bound. Unshaped links (the fast case) have no rate, so no bound: shown as –.',
  'herd s = wall time of the `herd … --json` process in the runner namespace: node start, hashing, SSH, agent upload, transfer, verification and rename on every host, release of the agents.',
  'floor s = the same push by a minimal program over plain TCP with the ideal schedule (bench/floor.ts): the runner streams slice k of the file to host k only, host k writes it and forwards each chunk as it arrives to every other host, every host writes at the right offset; no hashing, no encryption, a 16-byte header per connection. Timed from starting the runner\'s sender (node start included) to the last host having written and closed its file, without fsync (like scp; herd fsyncs). The receivers run in each host\'s network and mount namespaces with the hosts\' node, and listen before the clock starts. It is what this machine and these links can do.',
  'parallel scp = one OpenSSH `scp` per host, all at once (what popular scp actions do); sequential scp = one after another. On shaped links both need at least N × bound: the runner\'s link carries every copy.',
  'runner sent = bytes the runner\'s seeder uploaded (the report\'s bytesFromRunner) in copies of the file; the agent upload over SSH (the gzipped agent, about 30 KB per host, and only where its working folder lacks that build) is not in it.',
  'runner peak RSS: /usr/bin/time %M of the CLI process. agent peak RSS: the largest VmHWM of any agent process, sampled from /proc every 200 ms.',
  'CPU s / GiB (herd, parallel scp, floor) = CPU time of every process of that method on the runner and the hosts / GiB delivered (N × file size): cgroup v2 cpu.stat usage_usec of one group for the runner (the CLI, scp and ssh, the floor sender) and one per host (its sshd, so every session, agent and scp it starts, and the floor receiver), read before the method and after its last process on the hosts is gone. Kernel packet work is counted where the kernel charges it (mostly to the sending task); n/a without a writable cgroup2. All processes share this machine\'s cores.',
  'machine CPU busy = share of all cores not idle while herd ran (from /proc/stat), every process on the machine included (sshd, the shaped links\' packet work in the kernel); in brackets the kernel\'s part (system, irq, softirq). Near 100 % the machine, not the links, sets herd\'s time.',
  'hashing = herd\'s own phase line (`hashed in X s`: SHA-1 of every piece and SHA-256 of the file in a worker thread, 0.01 s resolution) against `sha1sum` of the same file, both reading from the page cache.',
]
