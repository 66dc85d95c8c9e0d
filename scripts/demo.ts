// The demonstration: starts a local cluster of sshd hosts on shaped links, pushes a file with the
// committed herd CLI exactly as a user would, checks every copy by sha256, and removes everything.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { canRunCluster, startCluster } from '../test/support/cluster.js'
import { cliPath, randomFile, repoRoot, hostsFile } from '../test/support/herd.js'

const hosts = Number(process.env.DEMO_HOSTS ?? 8)
const sizeMiB = Number(process.env.DEMO_MIB ?? 200)
const rateMbit = Number(process.env.DEMO_MBIT ?? 100)

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
    const file = randomFile(work, 'demo.bin', sizeMiB * 1024 * 1024)
    const list = hostsFile(work, cluster.hosts)
    console.log(`demo: hosts are named by aliases in ${cluster.sshConfigPath}; keys hashed in ${cluster.knownHostsPath}`)
    const logDir = process.env.DEMO_LOG_DIR ?? path.join(work, 'logs')
    const args = [cliPath, file.path, '/srv/demo.bin', list, '--log-dir', logDir]
    console.log(`demo: herd ${args.slice(1).join(' ')}`)
    const code = await new Promise<number>((resolve) => {
      const child = spawn('ip', ['netns', 'exec', cluster.runnerNetns, 'node', ...args], { env: cluster.env(), stdio: 'inherit', cwd: repoRoot })
      child.on('exit', (c) => resolve(c ?? 1))
    })
    let ok = 0
    for (const h of cluster.hosts) {
      const sum = await cluster.sha256On(h, '/srv/demo.bin')
      const good = sum === file.sha256
      if (good) ok++
      console.log(`demo: ${h.alias} (${h.address}) sha256 ${good ? 'matches' : `MISMATCH (${sum})`}`)
    }
    const bound = (sizeMiB * 1024 * 1024 * 8) / (rateMbit * 1e6)
    console.log(`demo: herd exited ${code}; ${ok}/${hosts} copies verified; one copy over one ${rateMbit} Mbit/s link takes ${bound.toFixed(1)} s`)
    return code === 0 && ok === hosts ? 0 : 1
  } finally {
    await cluster.destroy()
    fs.rmSync(work, { recursive: true, force: true })
    console.log('demo: cluster removed')
  }
}

main().then((c) => process.exit(c), (err) => { console.error(err); process.exit(1) })
