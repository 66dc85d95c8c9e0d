// The simulation's command line (`npm run sim -- …`): host counts, file, links, slow, late and failing hosts, the tracker, and a check against a benchmark run.
import path from 'node:path'
import { repoRoot } from '../../test/support/herd.js'
import type { Scenario } from './sim.js'
import { MAX_PEERS, PEER_LIST, TRACKER_CACHE } from './tracker.js'
import { SERVING } from '../../src/engine/serve-slots.js'

const MiB = 1024 * 1024

export const DEFAULT_HOSTS = [8, 16, 32, 64, 128, 256, 512, 1000, 2000, 5000, 10000]

export const USAGE = `usage: npm run sim -- [options]
  --hosts 8,32,1000     host counts (default ${DEFAULT_HOSTS.join(',')})
  --size-mib MIB        file size (default 1024: 1,024 pieces of 1 MiB)
  --rate MBIT           every host's link, each direction, nominal as tc is given it (default 1000)
  --runner-rate MBIT    the runner's link (default: --rate)
  --piece-kib KIB       piece length (default: pieceLengthFor(size, N), as the runner picks it)
  --slow-fraction F     this share of the hosts runs at --slow-factor times the rate (default 0);
                        each N then runs with equal links too, for the others' p50 against it
  --slow-factor X       (default 0.25)
  --latency-ms MS       one-way latency of each link to the switch (default 0.5)
  --join-spread S       agents start uniformly within S seconds (default 1)
  --late-fraction F     this share of the hosts starts --late-by seconds later (default 0)
  --late-by S           (default 10)
  --fail-fraction F     this share of the hosts dies at a random time within --fail-within s (default 0)
  --fail-within S       (default: one bound)
  --peer-list K         peers per tracker answer (default ${PEER_LIST}: numwant 200, bittorrent-tracker's cap)
  --max-peers K         wires a host dials up to, accepting up to twice that (default ${MAX_PEERS}: the agent's)
  --serving K           hosts the runner sends to at once, a piece per turn; 0: all that ask, at once (default ${SERVING})
  --tracker-cache M     hosts the tracker remembers (default ${TRACKER_CACHE}, bittorrent-tracker's)
  --efficiency E        share of a link's nominal rate that carries the file (default 0.85)
  --machine-gibps G     model one machine all hosts share, delivering at most G GiB/s (its CPU)
  --seed S              random seed (default 1)
  --check FILES         simulate each point of benchmark results JSONs, comma-separated (their hosts' start times, the floor's
                        link efficiency; again with the machine's CPU as a shared link) and compare
  --out FILE            results JSON (default bench/results/sim.json); the Markdown table and the SVG chart beside it`

/** A scenario for every N: the piece length, when not given, is the runner's for that N. */
export type BaseScenario = Omit<Scenario, 'hosts' | 'pieceLength'> & { pieceLength?: number }

export interface SimOptions {
  hosts: number[]
  /** Everything but N; no pieceLength: the runner's own choice for each N (pieceLengthFor). */
  base: BaseScenario
  /** Run each N with equal links as well (a slow share was asked for). */
  baseline: boolean
  check?: string[]
  out: string
}

export function parseSimOptions(argv: string[]): SimOptions {
  const values = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE)
      process.exit(0)
    }
    if (!arg.startsWith('--') || !USAGE.includes(`  ${arg} `)) throw new Error(`unknown argument ${arg}\n${USAGE}`)
    const v = argv[++i]
    if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`)
    values.set(arg, v)
  }
  const num = (name: string, fallback: number, min = 0, max = Infinity): number => {
    const raw = values.get(name)
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number from ${min} to ${max}, got ${raw}`)
    return n
  }
  const positive = (name: string, fallback: number) => {
    const n = num(name, fallback)
    if (n <= 0) throw new Error(`${name} must be above 0, got ${values.get(name)}`)
    return n
  }
  const hosts = values.has('--hosts')
    ? values.get('--hosts')!.split(',').map((v) => {
        const n = Number(v)
        if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new Error(`--hosts takes whole numbers 1..100000, got ${v}`)
        return n
      })
    : DEFAULT_HOSTS
  const sizeBytes = Math.round(positive('--size-mib', 1024) * MiB)
  const rateMbit = positive('--rate', 1000)
  const bound = (sizeBytes * 8) / (rateMbit * 1e6)
  const slowFraction = num('--slow-fraction', 0, 0, 1)
  const base: BaseScenario = {
    sizeBytes,
    pieceLength: values.has('--piece-kib') ? Math.round(positive('--piece-kib', 256) * 1024) : undefined,
    rateMbit,
    runnerMbit: positive('--runner-rate', rateMbit),
    efficiency: num('--efficiency', 0.85, 0.01, 1),
    slowFraction,
    slowFactor: positive('--slow-factor', 0.25),
    latencyMs: num('--latency-ms', 0.5),
    joinSpread: num('--join-spread', 1),
    lateFraction: num('--late-fraction', 0, 0, 1),
    lateBy: num('--late-by', 10),
    failFraction: num('--fail-fraction', 0, 0, 1),
    failWithin: num('--fail-within', bound),
    peerList: Math.round(positive('--peer-list', PEER_LIST)),
    trackerCache: Math.round(positive('--tracker-cache', TRACKER_CACHE)),
    maxPeers: Math.round(positive('--max-peers', MAX_PEERS)),
    serving: Math.round(num('--serving', SERVING)),
    machineGiBps: values.has('--machine-gibps') ? positive('--machine-gibps', 1) : undefined,
    seed: num('--seed', 1),
  }
  const out = path.resolve(values.get('--out') ?? path.join(repoRoot, 'bench', 'results', 'sim.json'))
  const check = values.get('--check')?.split(',').map((f) => path.resolve(f))
  return { hosts, base, baseline: slowFraction > 0, check, out }
}
