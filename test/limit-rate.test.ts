// --limit-rate on real sshd hosts over unshaped links: the rate, not the network, sets how long a push takes.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { openClusterFixture } from './support/fixture.js'
import { canRunCluster } from './support/cluster.js'
import { herd, hostsFile } from './support/herd.js'

const can = canRunCluster()
const MiB = 1024 * 1024

test('--limit-rate 5M: 100 MiB to 4 hosts on unshaped links takes 19 to 28 s (each host receives at most 5 MiB/s), every copy identical', { skip: can.ok ? false : can.why, timeout: 180_000 }, async (t) => {
  const fx = await openClusterFixture({ hosts: 4, prefix: 'herd-limit-rate-', file: { name: 'model.bin', bytes: 100 * MiB } })
  t.after(() => fx.close())
  const { cluster, work, file } = fx
  const logs = path.join(work, 'logs')
  const began = Date.now()
  const r = await herd(cluster, [file.path, '/srv/model.bin', hostsFile(work, cluster.hosts), '--limit-rate', '5M', '--log-dir', logs], { timeoutMs: 120_000 })
  const seconds = (Date.now() - began) / 1000
  assert.equal(r.code, 0, r.stderr + r.stdout)
  t.diagnostic(`${seconds.toFixed(1)} s; the runner sent ${(r.report!.bytesFromRunner / r.report!.size).toFixed(2)} copies`)
  assert.deepEqual(r.report!.succeeded, cluster.hosts.map((h) => h.alias))
  for (const h of cluster.hosts) {
    assert.equal(await cluster.sha256On(h, '/srv/model.bin'), file.sha256, `${h.alias}: sha256`)
    // The runner's upload alone would also take 20 s: each agent must have been given the limit too.
    assert.match(fs.readFileSync(path.join(logs, `${h.alias}.log`), 'utf8'), /receiving and sending at most 5242880 bytes\/s each/, `${h.alias}: the agent's limit`)
  }
  // Every host receives 100 MiB at 5 MiB/s at most (20 s), and the runner sends each byte about once at 5 MiB/s.
  assert.ok(seconds >= 19, `the push took ${seconds.toFixed(1)} s: faster than the limit allows`)
  assert.ok(seconds <= 28, `the push took ${seconds.toFixed(1)} s: the limit costs more than it should`)
})
