// The demonstration: starts a local cluster of sshd hosts on shaped links, pushes a file with the
// committed herd CLI exactly as a user would (hosts named only by ~/.ssh/config aliases, keys hashed in
// ~/.ssh/known_hosts), checks every copy by sha256 and mode, pushes the same file with parallel scp for
// comparison (DEMO_SCP=0 skips it), then pushes again with one host's sshd stopped, and removes everything.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { canRunCluster, startCluster, type Cluster } from '../test/support/cluster.js'
import { cliPath, randomFile, repoRoot, hostsFile } from '../test/support/herd.js'
import { clearDestination, runScp } from '../bench/methods.js'
import { comparisonLines, oneCopySeconds, type DemoRun } from './demo-summary.js'

const hosts = Number(process.env.DEMO_HOSTS ?? 8)
const sizeMiB = Number(process.env.DEMO_MIB ?? 200)
const rateMbit = Number(process.env.DEMO_MBIT ?? 100)
const MODE = 0o640
const measureScp = process.env.DEMO_SCP !== '0'

/** Runs the committed CLI in the runner's namespace with the user's environment, output to the terminal. */
function herd(cluster: Cluster, args: string[]): Promise<number> {
  console.log(`demo: herd ${args.join(' ')}`)
  return new Promise<number>((resolve) => {
    const child = spawn('ip', ['netns', 'exec', cluster.runnerNetns, 'node', cliPath, ...args], { env: cluster.env(), stdio: 'inherit', cwd: repoRoot })
    child.on('exit', (c) => resolve(c ?? 1))
  })
}

/** sha256 and mode on every host, and no herd process left anywhere; returns how many hosts are right. */
async function verify(cluster: Cluster, dest: string, sha256: string, skip?: number): Promise<number> {
  let ok = 0
  for (const h of cluster.hosts) {
    if (h.index === skip) continue
    const sum = await cluster.sha256On(h, dest)
    const mode = sum ? fs.statSync(cluster.hostPath(h, dest)).mode & 0o7777 : 0
    const strays = await cluster.waitForNoStrayProcesses(h, 10_000)
    const good = sum === sha256 && mode === MODE && strays.length === 0
    if (good) ok++
    console.log(`demo: ${h.alias} (${h.address}) sha256 ${sum === sha256 ? 'matches' : `MISMATCH (${sum})`}, mode ${mode.toString(8)}, ${strays.length ? `LEFT RUNNING: ${strays.map((p) => p.cmdline).join('; ')}` : 'nothing left running'}`)
  }
  return ok
}

async function main(): Promise<number> {
  const can = canRunCluster()
  if (!can.ok) {
    console.error(`demo: cannot start the local cluster: ${can.why}`)
    return 2
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-demo-'))
  console.log(`demo: starting ${hosts} sshd hosts in network namespaces, links shaped to ${rateMbit} Mbit/s`)
  const cluster = await startCluster({ hosts, rateMbit })
  try {
    const file = randomFile(work, 'demo.bin', sizeMiB * 1024 * 1024, MODE)
    const list = hostsFile(work, cluster.hosts)
    const logDir = process.env.DEMO_LOG_DIR ?? path.join(work, 'logs')
    console.log(`demo: hosts are named by aliases in ${cluster.sshConfigPath}; their keys are hashed in ${cluster.knownHostsPath}`)
    const began = performance.now()
    const code = await herd(cluster, [file.path, '/srv/demo.bin', list, '--log-dir', logDir])
    const run: DemoRun = { hosts, sizeMiB, rateMbit, herd: { seconds: (performance.now() - began) / 1000, verified: 0 } }
    const ok = await verify(cluster, '/srv/demo.bin', file.sha256)
    run.herd.verified = ok
    console.log(`demo: herd exited ${code}; ${ok}/${hosts} copies verified`)
    if (measureScp) {
      console.log(`\ndemo: the same file with parallel scp, one scp per host all at once, as scp actions do (DEMO_SCP=0 skips this; it takes about ${Math.round(hosts * oneCopySeconds(run))} s)`)
      run.scp = await runScp(cluster, undefined, { path: file.path, sha256: file.sha256, size: sizeMiB * 1024 * 1024 }, oneCopySeconds(run), true)
      clearDestination(cluster)
    }
    console.log('')
    for (const line of comparisonLines(run)) console.log(line)

    const down = cluster.hosts[Math.min(3, hosts - 1)]!
    console.log(`\ndemo: now with ${down.alias}'s sshd stopped`)
    await cluster.stopSshd(down)
    const logDir2 = `${logDir}-one-down`
    const code2 = await herd(cluster, [file.path, '/srv/demo-2.bin', list, '--log-dir', logDir2])
    const ok2 = await verify(cluster, '/srv/demo-2.bin', file.sha256, down.index)
    const downLog = fs.readFileSync(path.join(logDir2, `${down.alias}.log`), 'utf8')
    const line = downLog.split('\n').find((l) => /could not connect/.test(l)) ?? '(no line says it could not connect)'
    console.log(`demo: herd exited ${code2}; ${ok2}/${hosts - 1} other hosts verified; ${down.alias}'s log: ${line}`)
    return code === 0 && ok === hosts && code2 === 1 && ok2 === hosts - 1 && /could not connect/.test(line) ? 0 : 1
  } finally {
    await cluster.destroy()
    fs.rmSync(work, { recursive: true, force: true })
    console.log('demo: cluster removed')
  }
}

main().then((c) => process.exit(c), (err) => { console.error(err); process.exit(1) })
